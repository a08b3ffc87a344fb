import type { AlertEvent } from '../../schemas/types';
import { SESSION_LOCK_ORDER, columnValues, unnestOf, type Column } from '../columns';
import { isoOf, type ProjectedRecord, type ReadModel } from '../model';

/**
 * `alert_events` columns, in table order, from AlertEvent (fatigue.alerts.v1): `type` is the union
 * branch; level (AlertRaised, AlertEscalated), reason (the alert reason of AlertRaised, the clear
 * reason of AlertCleared), score (AlertRaised), escalation (AlertEscalated's count) and
 * acknowledged_by (AlertAcknowledged) are null for the other kinds.
 */
const alertEventColumns: Column<AlertEvent>[] = [
  { name: 'event_id', type: 'uuid', of: (e) => e.event_id },
  { name: 'ts', type: 'timestamptz', of: (e) => isoOf(e.ts) },
  { name: 'tenant_id', type: 'text', of: (e) => e.tenant_id },
  { name: 'session_id', type: 'text', of: (e) => e.session_id },
  { name: 'alert_id', type: 'text', of: (e) => e.event.alert_id },
  { name: 'type', type: 'text', of: (e) => e.event.type },
  {
    name: 'level',
    type: 'smallint',
    of: (e) => (e.event.type === 'AlertRaised' || e.event.type === 'AlertEscalated' ? e.event.level : null),
  },
  {
    name: 'reason',
    type: 'text',
    of: (e) => (e.event.type === 'AlertRaised' || e.event.type === 'AlertCleared' ? e.event.reason : null),
  },
  { name: 'score', type: 'real', of: (e) => (e.event.type === 'AlertRaised' ? e.event.score : null) },
  { name: 'escalation', type: 'integer', of: (e) => (e.event.type === 'AlertEscalated' ? e.event.count : null) },
  {
    name: 'acknowledged_by',
    type: 'text',
    of: (e) => (e.event.type === 'AlertAcknowledged' ? e.event.acknowledged_by : null),
  },
];

/**
 * Statement 1: the alert events go in as one multi-row insert, idempotent by (event_id, ts); the
 * events really inserted fold into `alerts`, one row per (tenant_id, alert_id): alert ids derive from
 * the session id, so another tenant's events under the same ids fold into a row of their own. The fold is order-free: level and
 * escalations only rise, raised/acknowledged/cleared are set once, status follows from them (cleared
 * over acknowledged over active), so a replay or an out-of-order batch cannot move an alert back.
 */
const alertsSql = `WITH ins AS (
  INSERT INTO alert_events (${alertEventColumns.map((c) => c.name).join(', ')})
  SELECT * FROM ${unnestOf(alertEventColumns)}
  ON CONFLICT DO NOTHING
  RETURNING alert_id, tenant_id, session_id, ts, type, level, reason, score, escalation, acknowledged_by)
${foldSql()}`;

/** The fold of the alert events in `ins` into `alerts` (shared by the projection and the rebuild seed). */
function foldSql(): string {
  return `INSERT INTO alerts AS a (alert_id, tenant_id, session_id, level, reason, score, status, raised_at, escalations,
                         acknowledged_at, acknowledged_by, cleared_at, clear_reason, last_event_ts)
SELECT alert_id, tenant_id, min(session_id),
       max(level),
       min(reason) FILTER (WHERE type = 'AlertRaised'),
       min(score) FILTER (WHERE type = 'AlertRaised'),
       CASE WHEN bool_or(type = 'AlertCleared') THEN 'cleared'
            WHEN bool_or(type = 'AlertAcknowledged') THEN 'acknowledged' ELSE 'active' END,
       min(ts) FILTER (WHERE type = 'AlertRaised'),
       coalesce(max(escalation), 0),
       min(ts) FILTER (WHERE type = 'AlertAcknowledged'),
       min(acknowledged_by) FILTER (WHERE type = 'AlertAcknowledged'),
       min(ts) FILTER (WHERE type = 'AlertCleared'),
       min(reason) FILTER (WHERE type = 'AlertCleared'),
       max(ts)
FROM ins GROUP BY tenant_id, alert_id ORDER BY alert_id, tenant_id
ON CONFLICT (tenant_id, alert_id) DO UPDATE SET
  level = GREATEST(a.level, EXCLUDED.level),
  reason = COALESCE(a.reason, EXCLUDED.reason),
  score = COALESCE(a.score, EXCLUDED.score),
  raised_at = COALESCE(a.raised_at, EXCLUDED.raised_at),
  escalations = GREATEST(a.escalations, EXCLUDED.escalations),
  acknowledged_at = COALESCE(a.acknowledged_at, EXCLUDED.acknowledged_at),
  acknowledged_by = COALESCE(a.acknowledged_by, EXCLUDED.acknowledged_by),
  cleared_at = COALESCE(a.cleared_at, EXCLUDED.cleared_at),
  clear_reason = COALESCE(a.clear_reason, EXCLUDED.clear_reason),
  status = CASE WHEN COALESCE(a.cleared_at, EXCLUDED.cleared_at) IS NOT NULL THEN 'cleared'
                WHEN COALESCE(a.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL THEN 'acknowledged'
                ELSE 'active' END,
  last_event_ts = GREATEST(a.last_event_ts, EXCLUDED.last_event_ts),
  updated_at = now()`;
}

/**
 * Statement 2 (it sees statement 1's writes): the alert counts of the batch's sessions (the
 * (tenant_id, session_id) pairs: $1 tenants, $2 session ids, element by element), recomputed
 * from `alerts` (all alerts, open = not cleared, highest level, newest alert event), so they are right
 * whatever was replayed. last_alert_at and last_seen_at only move forward.
 */
const sessionAlertsSql = sessionAlertsOf(
  '(tenant_id, session_id) IN (SELECT t, s FROM unnest($1::text[], $2::text[]) AS p(t, s))',
);

function sessionAlertsOf(where: string): string {
  return `INSERT INTO sessions (session_id, tenant_id, alert_count, open_alert_count, max_alert_level,
                      last_alert_at, last_seen_at)
SELECT session_id, tenant_id, count(*), count(*) FILTER (WHERE status <> 'cleared'), max(level),
       max(last_event_ts), max(last_event_ts)
FROM alerts WHERE ${where} GROUP BY tenant_id, session_id ORDER BY ${SESSION_LOCK_ORDER}
ON CONFLICT (tenant_id, session_id) DO UPDATE SET
  alert_count = EXCLUDED.alert_count,
  open_alert_count = EXCLUDED.open_alert_count,
  max_alert_level = EXCLUDED.max_alert_level,
  last_alert_at = GREATEST(sessions.last_alert_at, EXCLUDED.last_alert_at),
  last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at),
  updated_at = now()`;
}

/** `alert_events` rows, `alerts` current state and the sessions' alert counts from `fatigue.alerts.v1`. */
export const alertsModel: ReadModel = {
  name: 'alerts',
  topics: ['alerts'],
  writes: {
    tables: [{ name: 'alert_events', timeColumn: 'ts' }, { name: 'alerts' }],
    sessionColumns: ['alert_count', 'open_alert_count', 'max_alert_level', 'last_alert_at'],
    // `alerts` folded from every copied event, then every session's counts from it.
    seed: [
      `WITH ins AS (SELECT alert_id, tenant_id, session_id, ts, type, level, reason, score, escalation, acknowledged_by
  FROM alert_events)
${foldSql()}`,
      sessionAlertsOf('true'),
    ],
  },
  project(records) {
    if (records.length === 0) return [];
    const events = (records as ProjectedRecord<AlertEvent>[]).map((r) => r.value);
    // The batch's sessions as (tenant_id, session_id) pairs, once each, in session order.
    const pairs = [...new Map(events.map((e) => [JSON.stringify([e.session_id, e.tenant_id]), e])).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, e]) => e);
    return [
      { text: alertsSql, values: columnValues(alertEventColumns, events) },
      { text: sessionAlertsSql, values: [pairs.map((e) => e.tenant_id), pairs.map((e) => e.session_id)] },
    ];
  },
};
