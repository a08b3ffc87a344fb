import { Router } from 'express';
import { z } from 'zod';
import { redisKeys } from '../../core/redis-keys';
import { route } from '../openapi';
import type { ApiDeps } from '../app';
import { FeedHub } from '../feed-hub';
import { LiveQuery, resumePoint, serveFeed } from '../live-feed';
/**
 * `GET /v1/live`: every session of the caller's tenant live, as Server-Sent Events: the tenant feed
 * stream (`<prefix>:tenant:<t>:feed`, written by the Redis projection beside each session's feed), with
 * the per-session feed's contract (api/live-feed.ts: order, resume with Last-Event-ID, heartbeats,
 * slow clients dropped) and its caps (open streams per key and per process).
 */
export const tenantLiveRoutes = (d: ApiDeps): Router => {
  const r = Router();
  const hub = d.live?.hub ?? new FeedHub(d.redis, d.log);
  const keys = redisKeys(d.config.topicPrefix);
  route(
    r,
    {
      method: 'get',
      path: '/v1/live',
      summary: 'Follow every session of the tenant live (Server-Sent Events)',
      tags: ['live'],
      query: LiveQuery,
      responses: {
        200: {
          description:
            'text/event-stream: one message per feed entry of any session of the tenant, `id:` = tenant feed entry id, `event:` = session | score | alert, `data:` = the event as JSON (it names its `session_id`); a `: heartbeat` comment every 15 s. Reconnect with `Last-Event-ID` (or `?last_event_id=`) to receive exactly the entries after it (the stream keeps about the last 20000).',
          contentType: 'text/event-stream',
          schema: z.string(),
        },
        503: { description: 'Redis (the live feed) does not answer' },
      },
    },
    async ({ query, principal }, req, res) => {
      const lastEventId = resumePoint(req, query);
      const serving = { hub, log: d.log, sse: d.live?.sse, streams: d.streams };
      await serveFeed(serving, keys.tenantFeed(principal.tenantId), principal.keyId, lastEventId, res, {
        fallback: '/v1/sessions',
      });
    },
  );
  return r;
};
