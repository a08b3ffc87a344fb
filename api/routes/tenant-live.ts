import { Router } from 'express';
import { z } from 'zod';
import { messageOf } from '../../core/errors';
import { redisKeys } from '../../core/redis-keys';
import { HttpProblem, badRequest } from '../../core/http/problem';
import { route } from '../openapi';
import type { ApiDeps } from '../app';
import { FeedHub, STREAM_ID } from '../feed-hub';
import { followFeed } from '../live-feed';
import { SseStream, defaultSseOptions } from '../sse';
import { recordSseClients } from '../metrics';

const LiveQuery = z.object({
  last_event_id: z
    .string()
    .regex(STREAM_ID, 'must be a feed entry id <ms>-<seq> as sent in `id:`')
    .optional()
    .openapi({ description: 'resume after this entry (same as the Last-Event-ID header, which wins)' }),
});

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
      const header = req.get('last-event-id');
      if (header !== undefined && !STREAM_ID.test(header))
        throw badRequest([{ field: 'Last-Event-ID', message: 'must be a feed entry id <ms>-<seq> as sent in `id:`' }]);
      const lastEventId = header ?? query.last_event_id;
      const feedKey = keys.tenantFeed(principal.tenantId);
      await hub.lastId(feedKey).catch((err: unknown) => {
        d.log.warn({ err: messageOf(err) }, 'tenant live feed unavailable: Redis does not answer');
        throw new HttpProblem({
          type: 'https://vigil.dev/problems/live-feed-unavailable',
          title: 'Service Unavailable',
          status: 503,
          detail: 'the live feed is unavailable (Redis does not answer); retry later or read /v1/sessions',
        });
      });
      const lease = d.streams?.acquire(principal.keyId, res);
      const sse = new SseStream(res, d.live?.sse ?? defaultSseOptions);
      lease?.attach(sse);
      recordSseClients('live', 1);
      try {
        await followFeed(hub, feedKey, lastEventId, sse);
      } catch (err) {
        d.log.warn({ err: messageOf(err) }, 'tenant live feed ended by an error');
      } finally {
        recordSseClients('live', -1);
        sse.end();
        lease?.release();
      }
    },
  );
  return r;
};
