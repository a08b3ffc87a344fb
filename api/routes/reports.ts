import { Router } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../app';
import { route } from '../openapi';
import { notFound } from '../../core/http/problem';
import { ReportCache } from '../report-cache';
import { Id, iso, num } from '../schemas';

/**
 * Reports over the last `days` days (sessions started since now - days):
 * - `GET /v1/reports/sessions`: the tenant's session reports (`session_reports`, written by the
 *   report job when a session ends), newest first, at most MAX_REPORTS, with totals;
 * - `GET /v1/drivers/:id/report`: one driver's sessions (from `sessions`) and reports aggregated.
 * Both are cache-aside in Redis (api/report-cache.ts; `X-Cache: hit|miss|bypass`), TTL
 * `VIGIL_API_CACHE_TTL_S`, invalidated per tenant by `invalidateTenantCache`.
 */
const MAX_REPORTS = 1000;
const Days = z.coerce.number().int().min(1).max(365).default(7).openapi({ description: 'look-back in days, 1-365' });

const Report = z
  .object({
    session_id: z.string(),
    driver_id: z.string().nullable(),
    vehicle_id: z.string().nullable(),
    started_at: z.string().nullable(),
    ended_at: z.string().nullable(),
    duration_s: z.number().int().nullable(),
    model_version: z.string().nullable(),
    score_avg: z.number().nullable(),
    score_max: z.number().nullable(),
    level_max: z.number().int().nullable(),
    level1_s: z.number().int().nullable(),
    level2_s: z.number().int().nullable(),
    alert_count: z.number().int(),
    microsleep_count: z.number().int(),
    generated_at: z.string(),
  })
  .openapi('SessionReport');

const Totals = z.object({
  sessions: z.number().int(),
  duration_s: z.number().int(),
  level1_s: z.number().int(),
  level2_s: z.number().int(),
  alert_count: z.number().int(),
  microsleep_count: z.number().int(),
  score_max: z.number().nullable(),
  level_max: z.number().int().nullable(),
  /** Mean of the reports' score_avg weighted by duration. */
  score_avg: z.number().nullable(),
});

const SessionReports = z
  .object({
    days: z.number().int(),
    since: z.string(),
    truncated: z.boolean(),
    totals: Totals,
    reports: z.array(Report),
  })
  .openapi('SessionReports');

const DriverReport = z
  .object({
    driver_id: z.string(),
    days: z.number().int(),
    since: z.string(),
    sessions: z.object({
      total: z.number().int(),
      active: z.number().int(),
      ended: z.number().int(),
      alert_count: z.number().int(),
      max_level: z.number().int().nullable(),
      max_score: z.number().nullable(),
      last_started_at: z.string().nullable(),
    }),
    reports: Totals,
  })
  .openapi('DriverReport');

const round2 = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);

/** Totals over session_reports rows matching `where` ($1 tenant, $2 days, $3 optional driver). */
const TOTALS_SQL = (where: string) => `
  SELECT count(*)::int AS sessions, COALESCE(sum(duration_s), 0)::int AS duration_s,
         COALESCE(sum(level1_s), 0)::int AS level1_s, COALESCE(sum(level2_s), 0)::int AS level2_s,
         COALESCE(sum(alert_count), 0)::int AS alert_count, COALESCE(sum(microsleep_count), 0)::int AS microsleep_count,
         max(score_max) AS score_max, max(level_max) AS level_max,
         sum(score_avg * duration_s) / NULLIF(sum(duration_s) FILTER (WHERE score_avg IS NOT NULL), 0) AS score_avg
    FROM session_reports WHERE ${where}`;

const totalsOf = (t: Record<string, unknown>): z.infer<typeof Totals> => ({
  sessions: Number(t.sessions),
  duration_s: Number(t.duration_s),
  level1_s: Number(t.level1_s),
  level2_s: Number(t.level2_s),
  alert_count: Number(t.alert_count),
  microsleep_count: Number(t.microsleep_count),
  score_max: num(t.score_max as number | null),
  level_max: num(t.level_max as number | null),
  score_avg: round2(num(t.score_avg as string | null)),
});

export function reportsRouter(deps: ApiDeps): Router {
  const r = Router();
  const cache = new ReportCache({
    redis: deps.redis,
    prefix: deps.config.topicPrefix,
    ttlS: deps.config.api.cacheTtlS,
    log: deps.log,
  });

  route(
    r,
    {
      method: 'get',
      path: '/v1/reports/sessions',
      summary: "The tenant's session reports of the last days, newest first, with totals (cached)",
      tags: ['reports'],
      query: z.object({ days: Days }),
      responses: {
        200: { description: 'reports and totals; X-Cache says hit, miss or bypass', schema: SessionReports },
      },
    },
    async ({ query, principal }, _req, res) => {
      const { value, cache: outcome } = await cache.get(
        principal.tenantId,
        `reports:sessions:${query.days}`,
        async () => {
          const where = 'tenant_id = $1 AND started_at >= now() - make_interval(days => $2)';
          const [list, totals, since] = await Promise.all([
            deps.pool.query(
              `SELECT session_id, driver_id, vehicle_id, started_at, ended_at, duration_s, model_version, score_avg,
                    score_max, level_max, level1_s, level2_s, alert_count, microsleep_count, generated_at
               FROM session_reports WHERE ${where} ORDER BY started_at DESC, session_id DESC LIMIT $3`,
              [principal.tenantId, query.days, MAX_REPORTS + 1],
            ),
            deps.pool.query(TOTALS_SQL(where), [principal.tenantId, query.days]),
            deps.pool.query<{ since: Date }>('SELECT now() - make_interval(days => $1) AS since', [query.days]),
          ]);
          return {
            days: query.days,
            since: since.rows[0]!.since.toISOString(),
            truncated: list.rows.length > MAX_REPORTS,
            totals: totalsOf(totals.rows[0]),
            reports: list.rows.slice(0, MAX_REPORTS).map((x) => ({
              ...x,
              started_at: iso(x.started_at),
              ended_at: iso(x.ended_at),
              generated_at: x.generated_at.toISOString(),
            })),
          } satisfies z.infer<typeof SessionReports>;
        },
      );
      res.setHeader('X-Cache', outcome);
      res.json(value);
    },
  );

  route(
    r,
    {
      method: 'get',
      path: '/v1/drivers/:id/report',
      summary: "One driver's sessions and session reports of the last days, aggregated (cached)",
      tags: ['reports'],
      params: z.object({ id: Id('driver') }),
      query: z.object({ days: Days }),
      responses: {
        200: { description: 'the driver report; X-Cache says hit, miss or bypass', schema: DriverReport },
        404: { description: 'the driver has no session in the caller’s tenant' },
      },
    },
    async ({ params, query, principal }, _req, res) => {
      const { value, cache: outcome } = await cache.get(
        principal.tenantId,
        `reports:driver:${params.id}:${query.days}`,
        async () => {
          const known = await deps.pool.query(
            'SELECT 1 FROM sessions WHERE tenant_id = $1 AND driver_id = $2 LIMIT 1',
            [principal.tenantId, params.id],
          );
          if (!known.rowCount) return null;
          const args = [principal.tenantId, query.days, params.id];
          const [sessions, totals] = await Promise.all([
            deps.pool.query(
              `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'active')::int AS active,
                      count(*) FILTER (WHERE status = 'ended')::int AS ended,
                      COALESCE(sum(alert_count), 0)::int AS alert_count, max(max_level) AS max_level,
                      max(max_score) AS max_score, max(started_at) AS last_started_at,
                      now() - make_interval(days => $2) AS since
                 FROM sessions
                WHERE tenant_id = $1 AND driver_id = $3 AND started_at >= now() - make_interval(days => $2)`,
              args,
            ),
            deps.pool.query(
              TOTALS_SQL('tenant_id = $1 AND driver_id = $3 AND started_at >= now() - make_interval(days => $2)'),
              args,
            ),
          ]);
          const s = sessions.rows[0];
          return {
            driver_id: params.id,
            days: query.days,
            since: (s.since as Date).toISOString(),
            sessions: {
              total: s.total,
              active: s.active,
              ended: s.ended,
              alert_count: s.alert_count,
              max_level: num(s.max_level),
              max_score: num(s.max_score),
              last_started_at: iso(s.last_started_at),
            },
            reports: totalsOf(totals.rows[0]),
          } satisfies z.infer<typeof DriverReport>;
        },
      );
      if (!value) throw notFound(`driver ${params.id}`);
      res.setHeader('X-Cache', outcome);
      res.json(value);
    },
  );
  return r;
}
