import { buildVehicle } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { vehicleModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const frame = (seq: number, overrides: Parameters<typeof buildVehicle>[0] = {}) =>
  buildVehicle({ seq, ts: T0 + seq * 100, ...overrides });

describe('vehicle read model: vehicle_frames and the session’s vehicle frame count', () => {
  const db = readModelDb();
  const frames = () =>
    db.rows(
      `SELECT tenant_id, session_id, device_id, seq, ts, speed_kmh, lane_offset_m, steering_deg
       FROM vehicle_frames ORDER BY tenant_id, session_id, seq`,
    );

  it('stores each frame once, a lane offset not measured as null, and counts it once, however often it is applied', async () => {
    const events = [
      frame(1, { speed_kmh: 81.5, lane_offset_m: 0.125 }),
      frame(2, { session_id: 'session-0002', lane_offset_m: null, steering_deg: 3 }),
    ];
    const { once, twice } = await db.appliedTwice(vehicleModel, events, async () => ({
      frames: await frames(),
      sessions: await db.sessions(vehicleModel),
    }));

    const row = { tenant_id: 'tenant-a', device_id: 'vehicle-bus-1' };
    expect(once.frames).toEqual([
      {
        ...row,
        session_id: 'session-0001',
        seq: 1,
        ts: iso(100),
        speed_kmh: 81.5,
        lane_offset_m: 0.125,
        steering_deg: -1.5,
      },
      { ...row, session_id: 'session-0002', seq: 2, ts: iso(200), speed_kmh: 80, lane_offset_m: null, steering_deg: 3 },
    ]);
    expect(once.sessions).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', vehicle_frame_count: 1, last_seen_at: iso(100) },
      { tenant_id: 'tenant-a', session_id: 'session-0002', vehicle_frame_count: 1, last_seen_at: iso(200) },
    ]);
    expect(twice).toEqual(once);
  });

  it('ends with the same rows whether the frames come in one batch or in two, the later one first', async () => {
    const early = [frame(1), frame(2)];
    const late = [frame(3)];
    await db.given(vehicleModel, late);
    await db.given(vehicleModel, early);
    const inTwo = { frames: await frames(), sessions: await db.sessions(vehicleModel) };

    await db.clear();
    await db.given(vehicleModel, [...early, ...late]);
    expect({ frames: await frames(), sessions: await db.sessions(vehicleModel) }).toEqual(inTwo);
    expect(inTwo.sessions).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', vehicle_frame_count: 3, last_seen_at: iso(300) },
    ]);
  });

  it('keeps another tenant’s frames under the same session id out of this tenant’s rows and count', async () => {
    await db.given(vehicleModel, [frame(1), frame(2)]);
    const before = await db.rows(`SELECT * FROM vehicle_frames WHERE tenant_id = 'tenant-a' ORDER BY seq`);

    const other = frame(1, { tenant_id: 'tenant-b', ts: T0 + 900, speed_kmh: 120 });
    await db.given(vehicleModel, [other]);
    await db.given(vehicleModel, [other]);

    expect(await db.rows(`SELECT * FROM vehicle_frames WHERE tenant_id = 'tenant-a' ORDER BY seq`)).toEqual(before);
    expect(await db.sessions(vehicleModel)).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', vehicle_frame_count: 2, last_seen_at: iso(200) },
      { tenant_id: 'tenant-b', session_id: 'session-0001', vehicle_frame_count: 1, last_seen_at: iso(900) },
    ]);
  });
});
