import type { Statement } from '../../core/db';
import type { SessionEvent } from '../../schemas/types';
import { SESSION_LOCK_ORDER } from '../columns';
import { isoOf, type ProjectedRecord, type ReadModel } from '../model';

/** JavaScript's string order on UTF-16 units; session and tenant ids are ASCII, where it is byte order. */
const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * `sessions` rows from `sessions.v1`: SessionStarted sets driver, vehicle and start; SessionEnded
 * sets status `ended`; both move last_seen_at forward. Upserts, so either may arrive first (telemetry
 * counters may also have created the row) and a redelivery changes nothing. A session is the pair
 * (tenant_id, session_id): the upsert's key, so another tenant's event of the same session id never
 * touches this tenant's row. Statements go in (session_id, tenant_id) byte order (offset order within a
 * session), as SQL's `COLLATE "C"` sorts (SESSION_LOCK_ORDER): the order every read model locks
 * sessions in, so two projections' transactions cannot deadlock.
 */
export const sessionsModel: ReadModel = {
  name: 'sessions',
  topics: ['sessions'],
  writes: {
    tables: [],
    sessionColumns: ['driver_id', 'vehicle_id', 'status', 'started_at', 'ended_at', 'end_reason'],
    // No event table to derive them from: `--from` starts from the live values, and the replayed
    // SessionStarted/SessionEnded upserts set what they set.
    seed: [
      `INSERT INTO sessions (session_id, tenant_id, driver_id, vehicle_id, status, started_at, ended_at, end_reason, last_seen_at)
SELECT session_id, tenant_id, driver_id, vehicle_id, status, started_at, ended_at, end_reason, last_seen_at
FROM public.sessions WHERE status <> 'unknown' ORDER BY ${SESSION_LOCK_ORDER}`,
    ],
  },
  project(records) {
    const events = (records as ProjectedRecord<SessionEvent>[]).map((r) => r.value);
    // Array.prototype.sort is stable: a session's events keep their offset order.
    events.sort((a, b) => byteOrder(a.session_id, b.session_id) || byteOrder(a.tenant_id, b.tenant_id));
    return events.map(statementFor);
  },
};

function statementFor(e: SessionEvent): Statement {
  if (e.event.type === 'SessionStarted') {
    return {
      text: `INSERT INTO sessions (session_id, tenant_id, driver_id, vehicle_id, status, started_at, last_seen_at)
             VALUES ($1, $2, $3, $4, 'active', $5, $5)
             ON CONFLICT (tenant_id, session_id) DO UPDATE SET
               driver_id = EXCLUDED.driver_id, vehicle_id = EXCLUDED.vehicle_id, started_at = EXCLUDED.started_at,
               status = CASE WHEN sessions.status = 'ended' THEN 'ended' ELSE 'active' END,
               last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at),
               updated_at = now()`,
      values: [e.session_id, e.tenant_id, e.event.driver_id, e.event.vehicle_id, isoOf(e.ts)],
    };
  }
  return {
    text: `INSERT INTO sessions (session_id, tenant_id, status, ended_at, end_reason, last_seen_at)
           VALUES ($1, $2, 'ended', $3, $4, $3)
           ON CONFLICT (tenant_id, session_id) DO UPDATE SET
             status = 'ended', ended_at = EXCLUDED.ended_at, end_reason = EXCLUDED.end_reason,
             last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at),
             updated_at = now()`,
    values: [e.session_id, e.tenant_id, isoOf(e.ts), e.event.reason],
  };
}
