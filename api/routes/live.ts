import { Router } from 'express';
import { z } from 'zod';
import type { Pool } from '../../core/db';
import type { Redis } from '../../core/redis';
import type { Logger } from '../../core/logger';
import { redisKeys } from '../../core/redis-keys';
import { route } from '../openapi';
import { notFound } from '../../core/http/problem';
import { FeedHub } from '../feed-hub';
import type { ApiDeps } from '../app';
import { LiveQuery, resumePoint, serveFeed } from '../live-feed';
import type { SseOptions } from '../sse';
import type { StreamLimiter } from '../streams';

interface LiveDeps {
  pool: Pool;
  redis: Redis;
  log: Logger;
  hub: FeedHub;
  /** Key prefix of the Redis read model (the topic prefix). */
  prefix: string;
  sse?: SseOptions;
  /** Caps open streams per key and process and ends a revoked key's streams (api/streams.ts). */
  streams?: StreamLimiter;
}

/** Session ids as the read endpoints accept them: refused before they reach SQL or a Redis key. */
export const SessionIdParam = z.object({
  id: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
      'must be 1-128 letters, digits or _.:- and start with a letter or digit',
    )
    .openapi({ example: 'a3c1f2d4-1b2c-4d5e-8f90-123456789abc' }),
});

/**
 * Whether the tenant has this session: its `sessions` row (tenant_id, session_id), else the Redis
 * latest-state hash under the tenant's key (written from the first score, possibly before the
 * sessions projection caught up). Another tenant's session of the same id is not the caller's.
 */
async function tenantHasSession(
  pool: Pool,
  redis: Redis,
  prefix: string,
  tenantId: string,
  sessionId: string,
): Promise<boolean> {
  const { rowCount } = await pool.query('SELECT 1 FROM sessions WHERE tenant_id = $1 AND session_id = $2', [
    tenantId,
    sessionId,
  ]);
  if (rowCount) return true;
  const fromRedis = await redis.hget(redisKeys(prefix).latest(tenantId, sessionId), 'tenant_id').catch(() => null);
  return fromRedis === tenantId;
}

/**
 * `GET /v1/sessions/:id/live`: the session's live feed as Server-Sent Events (see live-feed.ts for
 * the ordering and resume contract). Another tenant's session is a 404, as an unknown one.
 */
export const liveRoutes = (d: ApiDeps): Router =>
  liveRouter({
    ...d,
    hub: d.live?.hub ?? new FeedHub(d.redis, d.log),
    prefix: d.config.topicPrefix,
    sse: d.live?.sse,
  });

function liveRouter(deps: LiveDeps): Router {
  const r = Router();
  const keys = redisKeys(deps.prefix);
  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions/:id/live',
      summary: 'Follow a session live (Server-Sent Events)',
      tags: ['live'],
      params: SessionIdParam,
      query: LiveQuery,
      responses: {
        200: {
          description:
            'text/event-stream: one message per feed entry, `id:` = feed entry id, `event:` = session | score | alert, `data:` = the event as JSON; a `: heartbeat` comment every 15 s. Reconnect with `Last-Event-ID` (or `?last_event_id=`) to receive exactly the entries after it.',
          contentType: 'text/event-stream',
          schema: z.string(),
        },
        404: { description: 'no such session for this tenant' },
        503: { description: 'Redis (the live feed) does not answer' },
      },
    },
    async ({ params, query, principal }, req, res) => {
      const lastEventId = resumePoint(req, query);
      if (!(await tenantHasSession(deps.pool, deps.redis, deps.prefix, principal.tenantId, params.id)))
        throw notFound(`session ${params.id}`);
      // The feed lives in Redis: without it there is nothing to follow, so say so before the stream opens.
      await serveFeed(deps, keys.feed(principal.tenantId, params.id), principal.keyId, lastEventId, res, {
        fallback: '/scores',
        logContext: { session_id: params.id },
      });
    },
  );
  return r;
}
