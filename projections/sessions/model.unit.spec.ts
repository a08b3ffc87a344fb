import { BUILD_TS, buildSession } from '../../test/support/build';
import { sessionsModel } from './model';

/**
 * The one thing rows cannot show: the order the statements lock `sessions` rows in. Every read model
 * locks them in (session_id, tenant_id) byte order (SESSION_LOCK_ORDER), so two projections'
 * transactions cannot deadlock; within a session the events keep their offset order.
 */
describe('sessions read model lock order', () => {
  it('upserts in (session_id, tenant_id) byte order, a session’s events in offset order', () => {
    const events = [
      buildSession('SessionStarted', { session_id: 'session-b' }),
      buildSession('SessionStarted', { session_id: 'session-B' }),
      buildSession('SessionStarted', { session_id: 'session-b', tenant_id: 'tenant-0' }),
      buildSession('SessionStarted', { session_id: 'session-a' }),
      buildSession('SessionEnded', { session_id: 'session-b', ts: BUILD_TS + 600_000 }),
    ];
    const statements = sessionsModel.project(
      events.map((value, i) => ({ topic: 'sessions' as const, partition: 0, offset: String(i), value })),
    );
    expect(statements.map((s) => s.values!.slice(0, 2))).toEqual([
      ['session-B', 'tenant-a'],
      ['session-a', 'tenant-a'],
      ['session-b', 'tenant-0'],
      ['session-b', 'tenant-a'],
      ['session-b', 'tenant-a'],
    ]);
    // The two of session-b, tenant-a: the start (driver, vehicle, start time) before the end (end time, reason).
    expect(statements.slice(3).map((s) => s.values!.slice(2))).toEqual([
      ['driver-1', 'vehicle-1', '2026-01-01T08:01:00.000Z'],
      ['2026-01-01T08:11:00.000Z', 'COMPLETED'],
    ]);
  });
});
