import { buildFace, buildSession } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { faceModel } from '../face/model';
import { sessionsModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const started = (s: number, overrides: Parameters<typeof buildSession<'SessionStarted'>>[1] = {}) =>
  buildSession('SessionStarted', { ts: T0 + s * 1000, ...overrides });
const ended = (s: number, overrides: Parameters<typeof buildSession<'SessionEnded'>>[1] = {}) =>
  buildSession('SessionEnded', { ts: T0 + s * 1000, ...overrides });

/** The session row the sessions model owns, from a start at `startS` and, if given, an end at `endS`. */
const sessionRow = (startS: number, end?: { s: number; reason: string }, overrides: Record<string, unknown> = {}) => ({
  tenant_id: 'tenant-a',
  session_id: 'session-0001',
  driver_id: 'driver-1',
  vehicle_id: 'vehicle-1',
  status: end ? 'ended' : 'active',
  started_at: iso(startS),
  ended_at: end ? iso(end.s) : null,
  end_reason: end?.reason ?? null,
  last_seen_at: iso(end?.s ?? startS),
  ...overrides,
});

describe('sessions read model: the driver, vehicle and life cycle of each session', () => {
  const db = readModelDb();

  it('starts and ends a session, however often the events are applied', async () => {
    const { once, twice } = await db.appliedTwice(
      sessionsModel,
      [
        started(0),
        started(5, { session_id: 'session-0002', driver_id: 'driver-2' }),
        ended(600, { reason: 'TIMEOUT' }),
      ],
      () => db.sessions(sessionsModel),
    );

    expect(once).toEqual([
      sessionRow(0, { s: 600, reason: 'TIMEOUT' }),
      sessionRow(5, undefined, { session_id: 'session-0002', driver_id: 'driver-2' }),
    ]);
    expect(twice).toEqual(once);
  });

  it('stays ended when the end arrives before the start, in an earlier batch or earlier in the same one', async () => {
    await db.given(sessionsModel, [ended(600)]);
    await db.given(sessionsModel, [started(0)]);
    const inTwo = await db.sessions(sessionsModel);

    await db.clear();
    await db.given(sessionsModel, [ended(600), started(0)]);
    expect(await db.sessions(sessionsModel)).toEqual(inTwo);
    expect(inTwo).toEqual([sessionRow(0, { s: 600, reason: 'COMPLETED' })]);
  });

  it('makes active a session its telemetry created first, keeping the telemetry’s count and newer last_seen_at', async () => {
    await db.given(faceModel, [buildFace({ seq: 1, ts: T0 + 30_000 })]);
    await db.given(sessionsModel, [started(0)]);

    expect(await db.sessions(sessionsModel)).toEqual([sessionRow(0, undefined, { last_seen_at: iso(30) })]);
    expect(await db.rows('SELECT face_frame_count FROM sessions')).toEqual([{ face_frame_count: 1 }]);
  });

  it('keeps another tenant’s start and end of the same session id out of this tenant’s row', async () => {
    await db.given(sessionsModel, [started(0)]);
    const other = [started(10, { tenant_id: 'tenant-b', driver_id: 'driver-b' }), ended(20, { tenant_id: 'tenant-b' })];
    await db.given(sessionsModel, other);
    await db.given(sessionsModel, other);

    expect(await db.sessions(sessionsModel)).toEqual([
      sessionRow(0),
      sessionRow(10, { s: 20, reason: 'COMPLETED' }, { tenant_id: 'tenant-b', driver_id: 'driver-b' }),
    ]);
  });
});
