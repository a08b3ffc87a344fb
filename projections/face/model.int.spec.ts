import { buildFace } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { faceModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const noFace = { face_detected: false, eye_closure: null, mouth_open: null } as const;
const headless = { head_pitch_deg: null, head_yaw_deg: null, head_roll_deg: null } as const;

describe('face read model: face_frames and the session’s face frame count', () => {
  const db = readModelDb();
  const frames = () =>
    db.rows(
      `SELECT tenant_id, session_id, seq, ts, face_detected, eye_closure, mouth_open, head_pitch_deg, head_yaw_deg, head_roll_deg
       FROM face_frames ORDER BY tenant_id, session_id, seq`,
    );

  it('stores each frame once, nulls where no face was seen, and counts it once, however often it is applied', async () => {
    const events = [
      buildFace({ seq: 1, ts: T0 + 50, eye_closure: 0.25, head_pitch_deg: -3, head_yaw_deg: 4.5 }),
      buildFace({ seq: 2, ts: T0 + 100, ...noFace, ...headless }),
    ];
    const { once, twice } = await db.appliedTwice(faceModel, events, async () => ({
      frames: await frames(),
      ids: await db.rows('SELECT event_id FROM face_frames ORDER BY seq'),
      sessions: await db.sessions(faceModel),
    }));

    expect(once.frames).toEqual([
      {
        tenant_id: 'tenant-a',
        session_id: 'session-0001',
        seq: 1,
        ts: iso(50),
        face_detected: true,
        eye_closure: 0.25,
        mouth_open: 0.125,
        head_pitch_deg: -3,
        head_yaw_deg: 4.5,
        head_roll_deg: 0,
      },
      { tenant_id: 'tenant-a', session_id: 'session-0001', seq: 2, ts: iso(100), ...noFace, ...headless },
    ]);
    expect(once.ids).toEqual(events.map((e) => ({ event_id: e.event_id })));
    expect(once.sessions).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', face_frame_count: 2, last_seen_at: iso(100) },
    ]);
    expect(twice).toEqual(once);
  });

  it('ends with the same rows whether the frames come in one batch or in two, the later one first', async () => {
    const early = [buildFace({ seq: 1, ts: T0 + 50 }), buildFace({ seq: 2, ts: T0 + 100 })];
    const late = [buildFace({ seq: 3, ts: T0 + 150 })];
    await db.given(faceModel, late);
    await db.given(faceModel, early);
    const inTwo = { frames: await frames(), sessions: await db.sessions(faceModel) };

    await db.clear();
    await db.given(faceModel, [...early, ...late]);
    expect({ frames: await frames(), sessions: await db.sessions(faceModel) }).toEqual(inTwo);
    expect(inTwo.sessions).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', face_frame_count: 3, last_seen_at: iso(150) },
    ]);
  });

  it('keeps another tenant’s frames under the same session id out of this tenant’s rows and count', async () => {
    await db.given(faceModel, [buildFace({ seq: 1, ts: T0 + 50 }), buildFace({ seq: 2, ts: T0 + 100 })]);
    const before = await db.rows(`SELECT * FROM face_frames WHERE tenant_id = 'tenant-a' ORDER BY seq`);

    const other = buildFace({ tenant_id: 'tenant-b', seq: 1, ts: T0 + 500, eye_closure: 1 });
    await db.given(faceModel, [other]);
    await db.given(faceModel, [other]);

    expect(await db.rows(`SELECT * FROM face_frames WHERE tenant_id = 'tenant-a' ORDER BY seq`)).toEqual(before);
    expect(await db.rows(`SELECT tenant_id, eye_closure FROM face_frames WHERE tenant_id = 'tenant-b'`)).toEqual([
      { tenant_id: 'tenant-b', eye_closure: 1 },
    ]);
    expect(await db.sessions(faceModel)).toEqual([
      { tenant_id: 'tenant-a', session_id: 'session-0001', face_frame_count: 2, last_seen_at: iso(100) },
      { tenant_id: 'tenant-b', session_id: 'session-0001', face_frame_count: 1, last_seen_at: iso(500) },
    ]);
  });
});
