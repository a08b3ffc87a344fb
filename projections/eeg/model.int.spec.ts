import { buildChannel, buildEeg } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { eegModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const frame = (seq: number, overrides: Parameters<typeof buildEeg>[0] = {}) =>
  buildEeg({ seq, ts: T0 + seq * 100, ...overrides });

describe('EEG read model: eeg_frames and the session’s EEG count and span', () => {
  const db = readModelDb();
  const frames = () =>
    db.rows('SELECT tenant_id, session_id, device_id, seq, ts, channels FROM eeg_frames ORDER BY tenant_id, seq');

  it('stores each frame’s channels as they came and counts it once, however often it is applied', async () => {
    const two = [buildChannel({ channel: 'Fz' }), buildChannel({ channel: 'Pz', alpha_uv2: 12.5, quality: 0.5 })];
    const events = [frame(1, { channels: two }), frame(2)];
    const { once, twice } = await db.appliedTwice(eegModel, events, async () => ({
      frames: await frames(),
      sessions: await db.sessions(eegModel),
    }));

    const row = { tenant_id: 'tenant-a', session_id: 'session-0001', device_id: 'eeg-1' };
    expect(once.frames).toEqual([
      { ...row, seq: 1, ts: iso(100), channels: two },
      { ...row, seq: 2, ts: iso(200), channels: [buildChannel()] },
    ]);
    expect(once.sessions).toEqual([
      {
        tenant_id: 'tenant-a',
        session_id: 'session-0001',
        eeg_frame_count: 2,
        first_ts: iso(100),
        last_ts: iso(200),
        last_seen_at: iso(200),
      },
    ]);
    expect(twice).toEqual(once);
  });

  it('spans the earliest to the latest frame whether they come in one batch or in two, the later one first', async () => {
    const early = [frame(1), frame(2)];
    const late = [frame(3)];
    await db.given(eegModel, late);
    await db.given(eegModel, early);
    const inTwo = { frames: await frames(), sessions: await db.sessions(eegModel) };

    await db.clear();
    await db.given(eegModel, [...early, ...late]);
    expect({ frames: await frames(), sessions: await db.sessions(eegModel) }).toEqual(inTwo);
    expect(inTwo.sessions).toEqual([
      {
        tenant_id: 'tenant-a',
        session_id: 'session-0001',
        eeg_frame_count: 3,
        first_ts: iso(100),
        last_ts: iso(300),
        last_seen_at: iso(300),
      },
    ]);
  });

  it('keeps another tenant’s frames under the same session id out of this tenant’s rows, count and span', async () => {
    await db.given(eegModel, [frame(1), frame(2)]);
    const before = await db.rows(`SELECT * FROM eeg_frames WHERE tenant_id = 'tenant-a' ORDER BY seq`);

    const other = frame(1, { tenant_id: 'tenant-b', ts: T0 + 50 });
    await db.given(eegModel, [other]);
    await db.given(eegModel, [other]);

    expect(await db.rows(`SELECT * FROM eeg_frames WHERE tenant_id = 'tenant-a' ORDER BY seq`)).toEqual(before);
    expect(await db.sessions(eegModel)).toEqual([
      {
        tenant_id: 'tenant-a',
        session_id: 'session-0001',
        eeg_frame_count: 2,
        first_ts: iso(100),
        last_ts: iso(200),
        last_seen_at: iso(200),
      },
      {
        tenant_id: 'tenant-b',
        session_id: 'session-0001',
        eeg_frame_count: 1,
        first_ts: iso(50),
        last_ts: iso(50),
        last_seen_at: iso(50),
      },
    ]);
  });
});
