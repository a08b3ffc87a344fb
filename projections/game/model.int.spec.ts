import { buildGame } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { gameModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const at = (seq: number) => ({ seq, ts: T0 + seq * 1000 });

describe('game read model: game_events and the session’s game event count', () => {
  const db = readModelDb();
  const events = () =>
    db.rows('SELECT tenant_id, session_id, device_id, seq, ts, kind, details FROM game_events ORDER BY tenant_id, seq');

  it('stores every kind with its own fields as details, once, and counts it once, however often it is applied', async () => {
    const given = [
      buildGame('LaneDeparture', { ...at(1), side: 'RIGHT', lane_offset_m: 1.75 }),
      buildGame('Collision', { ...at(2), object: 'barrier' }),
      buildGame('StimulusShown', { ...at(3), stimulus_id: 'p1' }),
      buildGame('StimulusResponse', { ...at(4), stimulus_id: 'p1', reaction_ms: 312 }),
      buildGame('StimulusMissed', { ...at(5), stimulus_id: 'p2', timeout_ms: 1500 }),
    ];
    const { once, twice } = await db.appliedTwice(gameModel, given, async () => ({
      events: await events(),
      sessions: await db.sessions(gameModel),
    }));

    const row = (seq: number) => ({
      tenant_id: 'tenant-a',
      session_id: 'session-0001',
      device_id: 'simulator-1',
      seq,
      ts: iso(seq * 1000),
    });
    expect(once.events).toEqual([
      { ...row(1), kind: 'LaneDeparture', details: { side: 'RIGHT', lane_offset_m: 1.75 } },
      { ...row(2), kind: 'Collision', details: { object: 'barrier', speed_kmh: 42 } },
      { ...row(3), kind: 'StimulusShown', details: { stimulus_id: 'p1' } },
      { ...row(4), kind: 'StimulusResponse', details: { stimulus_id: 'p1', reaction_ms: 312 } },
      { ...row(5), kind: 'StimulusMissed', details: { stimulus_id: 'p2', timeout_ms: 1500 } },
    ]);
    expect(once.sessions).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', game_event_count: 5, last_seen_at: iso(5000) },
    ]);
    expect(twice).toEqual(once);
  });

  it('ends with the same rows whether the events come in one batch or in two, the later one first', async () => {
    const early = [buildGame('StimulusShown', at(1)), buildGame('StimulusResponse', at(2))];
    const late = [buildGame('Collision', at(3))];
    await db.given(gameModel, late);
    await db.given(gameModel, early);
    const inTwo = { events: await events(), sessions: await db.sessions(gameModel) };

    await db.clear();
    await db.given(gameModel, [...early, ...late]);
    expect({ events: await events(), sessions: await db.sessions(gameModel) }).toEqual(inTwo);
    expect(inTwo.sessions).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', game_event_count: 3, last_seen_at: iso(3000) },
    ]);
  });

  it('keeps another tenant’s events under the same session id out of this tenant’s rows and count', async () => {
    await db.given(gameModel, [buildGame('StimulusShown', at(1)), buildGame('StimulusMissed', at(2))]);
    const before = await db.rows(`SELECT * FROM game_events WHERE tenant_id = 'tenant-a' ORDER BY seq`);

    const other = buildGame('Collision', { tenant_id: 'tenant-b', ...at(7) });
    await db.given(gameModel, [other]);
    await db.given(gameModel, [other]);

    expect(await db.rows(`SELECT * FROM game_events WHERE tenant_id = 'tenant-a' ORDER BY seq`)).toEqual(before);
    expect(await db.sessions(gameModel)).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', game_event_count: 2, last_seen_at: iso(2000) },
      { tenant_id: 'tenant-b', session_id: 'session-0001', game_event_count: 1, last_seen_at: iso(7000) },
    ]);
  });
});
