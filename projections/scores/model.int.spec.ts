import { buildScore } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { scoresModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
/** fatigue-v1's score of the 60 s window ending `endS` seconds after T0. */
const scored = (endS: number, score: number, level: number, overrides: Parameters<typeof buildScore>[0] = {}) =>
  buildScore({ ts: T0 + endS * 1000, score, level, ...overrides });

describe('scores read model: fatigue_scores and the session’s score status', () => {
  const db = readModelDb();
  const scores = () =>
    db.rows(
      `SELECT tenant_id, session_id, ts, window_start_ts, score, level, ocular, driving, eeg, reaction, yawn,
              features, baseline_ready, model_version
       FROM fatigue_scores ORDER BY tenant_id, session_id, ts`,
    );
  const session = (last: [number, number, number], max: [number, number], count: number, tenant = 'tenant-a') => ({
    tenant_id: tenant,
    session_id: 'session-0001',
    score_count: count,
    last_score: last[1],
    last_level: last[2],
    last_score_at: iso(last[0]),
    max_score: max[0],
    max_level: max[1],
    last_seen_at: iso(last[0]),
  });

  it('stores each window’s score once, a producer retry included, and sets the session’s status, however often it is applied', async () => {
    const first = scored(60, 42.5, 0, { components: { driving: 0.75 }, features: { sdlp_m: 0.25, lapses: 2 } });
    const second = scored(120, 71.25, 2, { baseline_ready: true });
    const { once, twice } = await db.appliedTwice(scoresModel, [first, second, { ...second }], async () => ({
      scores: await scores(),
      ids: await db.rows('SELECT event_id FROM fatigue_scores ORDER BY ts'),
      sessions: await db.sessions(scoresModel),
    }));

    const row = { tenant_id: 'tenant-a', session_id: 'session-0001', model_version: 'fatigue-v1' };
    const features = {
      perclos: 0.125,
      long_blink_share: null,
      sdlp_m: null,
      lane_departures: 0,
      eeg_ratio: null,
      eeg_ratio_z: null,
      lapses: 0,
      yawns: 0,
    };
    expect(once.scores).toEqual([
      {
        ...row,
        ts: iso(60),
        window_start_ts: iso(0),
        score: 42.5,
        level: 0,
        ...{ ocular: 0.5, driving: 0.75, eeg: null, reaction: 0.25, yawn: 0 },
        features: { ...features, sdlp_m: 0.25, lapses: 2 },
        baseline_ready: false,
      },
      {
        ...row,
        ts: iso(120),
        window_start_ts: iso(60),
        score: 71.25,
        level: 2,
        ...{ ocular: 0.5, driving: null, eeg: null, reaction: 0.25, yawn: 0 },
        features,
        baseline_ready: true,
      },
    ]);
    expect(once.ids).toEqual([{ event_id: first.event_id }, { event_id: second.event_id }]);
    expect(once.sessions).toEqual([session([120, 71.25, 2], [71.25, 2], 2)]);
    expect(twice).toEqual(once);
  });

  it('keeps the newest window as the last score when an older window arrives late, in a later batch or the same one', async () => {
    const newer = [scored(60, 42.5, 0), scored(180, 55, 1)];
    const late = [scored(120, 80, 2)];
    await db.given(scoresModel, newer);
    await db.given(scoresModel, late);
    const inTwo = { scores: await scores(), sessions: await db.sessions(scoresModel) };

    await db.clear();
    await db.given(scoresModel, [...newer, ...late]);
    expect({ scores: await scores(), sessions: await db.sessions(scoresModel) }).toEqual(inTwo);
    expect(inTwo.sessions).toEqual([session([180, 55, 1], [80, 2], 3)]);
    expect(inTwo.scores.map((r) => r.ts)).toEqual([iso(60), iso(120), iso(180)]);
  });

  it('keeps another tenant’s score of the same session and window in its own row and status', async () => {
    await db.given(scoresModel, [scored(60, 42.5, 0)]);
    const before = await db.rows(`SELECT * FROM fatigue_scores WHERE tenant_id = 'tenant-a'`);

    const other = scored(60, 90, 2, { tenant_id: 'tenant-b' });
    await db.given(scoresModel, [other]);
    await db.given(scoresModel, [other]);

    expect(await db.rows(`SELECT * FROM fatigue_scores WHERE tenant_id = 'tenant-a'`)).toEqual(before);
    expect((await scores()).map((r) => [r.tenant_id, r.score])).toEqual([
      ['tenant-a', 42.5],
      ['tenant-b', 90],
    ]);
    expect(await db.sessions(scoresModel)).toEqual([
      session([60, 42.5, 0], [42.5, 0], 1),
      session([60, 90, 2], [90, 2], 1, 'tenant-b'),
    ]);
  });
});
