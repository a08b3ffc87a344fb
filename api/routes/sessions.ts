import { Router } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../app';
import { route } from '../openapi';
import { notFound } from '../../core/http/problem';
import { softRedis } from '../redis-read';
import { Cursor, Id, Instant, Limit, SessionIdParams, TimeIdKey, encodeCursor, iso, num } from '../schemas';
import { redisKeys } from '../../core/redis-keys';
import { ShortCache } from '../short-cache';

/**
 * `GET /v1/sessions` (the tenant's sessions, newest start first, keyset pages) and
 * `GET /v1/sessions/:id` (one session: PostgreSQL state and counters, the latest score from Redis).
 * Every query names the caller's tenant: another tenant's session is a 404.
 */

const SessionSummary = z
  .object({
    session_id: z.string(),
    tenant_id: z.string(),
    driver_id: z.string().nullable(),
    vehicle_id: z.string().nullable(),
    status: z.enum(['unknown', 'active', 'ended']),
    started_at: z.string().nullable(),
    ended_at: z.string().nullable(),
    end_reason: z.string().nullable(),
    last_seen_at: z.string().nullable(),
    last_score: z.number().nullable(),
    last_level: z.number().int().nullable(),
    max_score: z.number().nullable(),
    max_level: z.number().int().nullable(),
    alert_count: z.number().int(),
    open_alert_count: z.number().int(),
  })
  .openapi('SessionSummary');

const SessionList = z.object({ sessions: z.array(SessionSummary), next_cursor: z.string().nullable() });

const Latest = z
  .object({
    ts: z.string(),
    window_start_ts: z.string().nullable(),
    score: z.number(),
    level: z.number().int(),
    components: z.record(z.number().nullable()).nullable(),
    model_version: z.string().nullable(),
    source: z.enum(['redis', 'postgres']),
  })
  .openapi('LatestScore');

const SessionDetail = SessionSummary.extend({
  latest: Latest.nullable(),
  telemetry: z.object({
    eeg: z.object({ frames: z.number().int(), first_ts: z.string().nullable(), last_ts: z.string().nullable() }),
    face: z.object({ frames: z.number().int() }),
    vehicle: z.object({ frames: z.number().int() }),
    game: z.object({ events: z.number().int() }),
  }),
  scores: z.object({ count: z.number().int(), last_at: z.string().nullable() }),
  alerts: z.object({
    total: z.number().int(),
    open: z.number().int(),
    max_level: z.number().int().nullable(),
    last_at: z.string().nullable(),
  }),
}).openapi('SessionDetail');

const ListQuery = z.object({
  status: z.enum(['unknown', 'active', 'ended']).optional().openapi({ description: 'current status' }),
  driver: Id('driver').optional(),
  level: z.coerce
    .number()
    .int()
    .min(0)
    .max(2)
    .optional()
    .openapi({ description: 'sessions whose highest level reached is at least this' }),
  from: Instant('sessions started at or after this').optional(),
  to: Instant('sessions started before this').optional(),
  limit: Limit(500, 50),
  cursor: Cursor(TimeIdKey).optional(),
});

interface SessionRow {
  session_id: string;
  tenant_id: string;
  driver_id: string | null;
  vehicle_id: string | null;
  status: 'unknown' | 'active' | 'ended';
  started_at: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  last_seen_at: Date | null;
  last_score: number | null;
  last_level: number | null;
  last_score_at: Date | null;
  max_score: number | null;
  max_level: number | null;
  alert_count: number;
  open_alert_count: number;
  max_alert_level: number | null;
  last_alert_at: Date | null;
  eeg_frame_count: string;
  face_frame_count: string;
  vehicle_frame_count: string;
  game_event_count: string;
  score_count: string;
  first_ts: Date | null;
  last_ts: Date | null;
}

const summary = (s: SessionRow): z.infer<typeof SessionSummary> => ({
  session_id: s.session_id,
  tenant_id: s.tenant_id,
  driver_id: s.driver_id,
  vehicle_id: s.vehicle_id,
  status: s.status,
  started_at: iso(s.started_at),
  ended_at: iso(s.ended_at),
  end_reason: s.end_reason,
  last_seen_at: iso(s.last_seen_at),
  last_score: s.last_score,
  last_level: s.last_level,
  max_score: s.max_score,
  max_level: s.max_level,
  alert_count: s.alert_count,
  open_alert_count: s.open_alert_count,
});

/** The tenant's session row, or a 404 (also for another tenant's session: its existence is not disclosed). */
export async function sessionOf(deps: ApiDeps, tenantId: string, sessionId: string): Promise<SessionRow> {
  const { rows } = await deps.pool.query<SessionRow>(
    'SELECT * FROM sessions WHERE session_id = $1 AND tenant_id = $2',
    [sessionId, tenantId],
  );
  if (!rows[0]) throw notFound(`session ${sessionId}`);
  return rows[0];
}

/**
 * The Redis `latest` hash of the tenant's session as the API shows it (the key names the tenant; the
 * hash's tenant_id is checked too); undefined when absent, unusable or Redis is down.
 */
async function latestFromRedis(deps: ApiDeps, sessionId: string, tenantId: string) {
  const h = await softRedis(deps.log, 'latest', () =>
    deps.redis.hgetall(redisKeys(deps.config.topicPrefix).latest(tenantId, sessionId)),
  );
  if (!h || h.score === undefined || h.ts === undefined || h.tenant_id !== tenantId) return undefined;
  let components: Record<string, number | null> | null = null;
  try {
    components = h.components ? (JSON.parse(h.components) as Record<string, number | null>) : null;
  } catch {
    components = null;
  }
  return {
    ts: new Date(Number(h.ts)).toISOString(),
    window_start_ts: h.window_start_ts ? new Date(Number(h.window_start_ts)).toISOString() : null,
    score: Number(h.score),
    level: Number(h.level),
    components,
    model_version: h.model_version ?? null,
    source: 'redis' as const,
  };
}

/** The detail body (JSON text) of a tenant's session: its PostgreSQL row and the latest score from Redis. */
async function detailOf(deps: ApiDeps, tenantId: string, s: SessionRow): Promise<string> {
  const fromRedis = await latestFromRedis(deps, s.session_id, tenantId);
  const latest =
    fromRedis ??
    (s.last_score !== null && s.last_level !== null && s.last_score_at
      ? {
          ts: s.last_score_at.toISOString(),
          window_start_ts: null,
          score: s.last_score,
          level: s.last_level,
          components: null,
          model_version: null,
          source: 'postgres' as const,
        }
      : null);
  const body: z.infer<typeof SessionDetail> = {
    ...summary(s),
    latest,
    telemetry: {
      eeg: { frames: Number(s.eeg_frame_count), first_ts: iso(s.first_ts), last_ts: iso(s.last_ts) },
      face: { frames: Number(s.face_frame_count) },
      vehicle: { frames: Number(s.vehicle_frame_count) },
      game: { events: Number(s.game_event_count) },
    },
    scores: { count: Number(s.score_count), last_at: iso(s.last_score_at) },
    alerts: {
      total: s.alert_count,
      open: s.open_alert_count,
      max_level: num(s.max_alert_level),
      last_at: iso(s.last_alert_at),
    },
  };
  return JSON.stringify(body);
}

export function sessionsRouter(deps: ApiDeps): Router {
  const r = Router();
  // Dashboards poll the same sessions: a session's PostgreSQL row (state, counters) is reused for
  // VIGIL_API_DETAIL_CACHE_MS (default 100 ms) in this process, keyed by tenant and session
  // (api/short-cache.ts states the contract). The latest score is read from Redis on every request
  // (one HGETALL): it is what a dashboard polls for, and a cached answer held it back by up to the TTL.
  const rows = new ShortCache<SessionRow>(deps.config.api.detailCacheMs);

  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions',
      summary: "The tenant's sessions, newest start first (sessions not started yet last), keyset pages",
      tags: ['sessions'],
      query: ListQuery,
      responses: { 200: { description: 'a page of sessions; next_cursor null on the last page', schema: SessionList } },
    },
    async ({ query: q, principal }, _req, res) => {
      const [curTs, curId] = q.cursor ?? [undefined, undefined];
      const { rows } = await deps.pool.query<SessionRow>(
        `SELECT * FROM sessions
          WHERE tenant_id = $1
            AND ($2::text IS NULL OR status = $2)
            AND ($3::text IS NULL OR driver_id = $3)
            AND ($4::int IS NULL OR max_level >= $4)
            AND ($5::timestamptz IS NULL OR started_at >= $5)
            AND ($6::timestamptz IS NULL OR started_at < $6)
            AND ($8::text IS NULL
                 OR ($7::timestamptz IS NULL AND started_at IS NULL AND session_id < $8)
                 OR ($7::timestamptz IS NOT NULL
                     AND (started_at < $7 OR (started_at = $7 AND session_id < $8) OR started_at IS NULL)))
          ORDER BY started_at DESC NULLS LAST, session_id DESC
          LIMIT $9`,
        [
          principal.tenantId,
          q.status ?? null,
          q.driver ?? null,
          q.level ?? null,
          q.from ?? null,
          q.to ?? null,
          curTs ?? null,
          curId ?? null,
          q.limit + 1,
        ],
      );
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      res.json({
        sessions: page.map(summary),
        next_cursor: rows.length > q.limit && last ? encodeCursor([iso(last.started_at), last.session_id]) : null,
      });
    },
  );

  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions/:id',
      summary: 'One session: state, counters per stream, alert counts, and the latest score (Redis, else PostgreSQL)',
      tags: ['sessions'],
      params: SessionIdParams,
      responses: {
        200: { description: 'the session', schema: SessionDetail },
        404: { description: 'no such session in the caller’s tenant' },
      },
    },
    async ({ params, principal }, _req, res) => {
      const { value: row, hit } = await rows.get(`${principal.tenantId}\u0000${params.id}`, () =>
        sessionOf(deps, principal.tenantId, params.id),
      );
      res.setHeader('X-Cache', hit ? 'hit' : 'miss');
      res.type('application/json').send(await detailOf(deps, principal.tenantId, row));
    },
  );
  return r;
}
