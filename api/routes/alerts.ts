import { Router } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../app';
import { route } from '../openapi';
import { Cursor, Limit, SessionIdParams, encodeCursor, iso } from '../schemas';
import { sessionOf } from './sessions';

/**
 * Alerts in their current state (the `alerts` read model, folded from the alert life cycle):
 * `GET /v1/sessions/:id/alerts` (one session's, newest first) and `GET /v1/alerts?state=` (the
 * tenant's, newest first, keyset pages). Newest = raised_at, or the alert's first event time when
 * its AlertRaised has not been projected yet.
 */
const Alert = z
  .object({
    alert_id: z.string(),
    session_id: z.string(),
    level: z.number().int().nullable(),
    reason: z.string().nullable(),
    score: z.number().nullable(),
    status: z.enum(['active', 'acknowledged', 'cleared']),
    raised_at: z.string().nullable(),
    escalations: z.number().int(),
    acknowledged_at: z.string().nullable(),
    acknowledged_by: z.string().nullable(),
    cleared_at: z.string().nullable(),
    clear_reason: z.string().nullable(),
    last_event_ts: z.string(),
  })
  .openapi('Alert');

interface AlertRow {
  alert_id: string;
  session_id: string;
  level: number | null;
  reason: string | null;
  score: number | null;
  status: 'active' | 'acknowledged' | 'cleared';
  raised_at: Date | null;
  escalations: number;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  cleared_at: Date | null;
  clear_reason: string | null;
  last_event_ts: Date;
  sort_ts: Date;
}

const COLUMNS = `alert_id, session_id, level, reason, score, status, raised_at, escalations, acknowledged_at,
  acknowledged_by, cleared_at, clear_reason, last_event_ts, COALESCE(raised_at, last_event_ts) AS sort_ts`;

const alertOf = (a: AlertRow): z.infer<typeof Alert> => ({
  alert_id: a.alert_id,
  session_id: a.session_id,
  level: a.level,
  reason: a.reason,
  score: a.score,
  status: a.status,
  raised_at: iso(a.raised_at),
  escalations: a.escalations,
  acknowledged_at: iso(a.acknowledged_at),
  acknowledged_by: a.acknowledged_by,
  cleared_at: iso(a.cleared_at),
  clear_reason: a.clear_reason,
  last_event_ts: a.last_event_ts.toISOString(),
});

const AlertKey = z.tuple([z.string().datetime({ offset: true }), z.string().min(1).max(256)]);

const states = ['active', 'acknowledged', 'cleared', 'all'] as const;

export function alertsRouter(deps: ApiDeps): Router {
  const r = Router();

  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions/:id/alerts',
      summary: "A session's alerts in their current state, newest first",
      tags: ['alerts'],
      params: SessionIdParams,
      query: z.object({ limit: Limit(1000, 200) }),
      responses: {
        200: { description: 'the alerts', schema: z.object({ session_id: z.string(), alerts: z.array(Alert) }) },
        404: { description: 'no such session in the caller’s tenant' },
      },
    },
    async ({ params, query, principal }, _req, res) => {
      const s = await sessionOf(deps, principal.tenantId, params.id);
      const { rows } = await deps.pool.query<AlertRow>(
        `SELECT ${COLUMNS} FROM alerts WHERE session_id = $1 AND tenant_id = $2
          ORDER BY sort_ts DESC, alert_id DESC LIMIT $3`,
        [s.session_id, principal.tenantId, query.limit],
      );
      res.json({ session_id: s.session_id, alerts: rows.map(alertOf) });
    },
  );

  route(
    r,
    {
      method: 'get',
      path: '/v1/alerts',
      summary: "The tenant's alerts by state (default active), newest first, keyset pages",
      tags: ['alerts'],
      query: z.object({
        state: z.enum(states).default('active').openapi({ description: 'active, acknowledged, cleared or all' }),
        limit: Limit(500, 100),
        cursor: Cursor(AlertKey).optional(),
      }),
      responses: {
        200: {
          description: 'a page of alerts; next_cursor null on the last page',
          schema: z.object({ alerts: z.array(Alert), next_cursor: z.string().nullable() }),
        },
      },
    },
    async ({ query: q, principal }, _req, res) => {
      const { rows } = await deps.pool.query<AlertRow>(
        `SELECT ${COLUMNS} FROM alerts
          WHERE tenant_id = $1 AND ($2::text = 'all' OR status = $2)
            AND ($3::timestamptz IS NULL OR (COALESCE(raised_at, last_event_ts), alert_id) < ($3, $4::text))
          ORDER BY sort_ts DESC, alert_id DESC LIMIT $5`,
        [principal.tenantId, q.state, q.cursor?.[0] ?? null, q.cursor?.[1] ?? null, q.limit + 1],
      );
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      res.json({
        alerts: page.map(alertOf),
        next_cursor: rows.length > q.limit && last ? encodeCursor([last.sort_ts.toISOString(), last.alert_id]) : null,
      });
    },
  );
  return r;
}
