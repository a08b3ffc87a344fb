import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Logger } from '../core/logger';
import { messageOf } from '../core/errors';
import { HttpProblem, badRequest } from '../core/http/problem';
import { STREAM_ID, compareStreamIds, type FeedBatch, type FeedEntry, type FeedHub } from './feed-hub';
import { SseStream, defaultSseOptions, type SseOptions } from './sse';
import { recordSseClients } from './metrics';
import type { StreamLimiter } from './streams';

/**
 * Follows one session's feed stream for one SSE client, in stream order, each entry exactly once:
 *
 * 1. listen to the hub first (batches queue up meanwhile), so nothing written from now on is missed;
 * 2. catch up: after `lastEventId` (exclusive) to the end of the stream when resuming; without it,
 *    start where the hub's batches for this client start (a new client gets what happens from now on);
 * 3. then each hub batch in turn: if it starts after where the client stands (the hub was already past
 *    the client's position when it subscribed), fetch the gap with XRANGE first; entries at or before
 *    the client's position are skipped (they were sent by the catch-up).
 *
 * Resolves when the client goes away (or is dropped as too slow). Entries trimmed from the stream
 * (MAXLEN ~1000 per session) before a resume cannot be replayed; the read endpoints have the history.
 */
export async function followFeed(
  hub: FeedHub,
  key: string,
  lastEventId: string | undefined,
  sse: SseStream,
): Promise<void> {
  const queue: FeedBatch[] = [];
  let notify: (() => void) | undefined;
  const { position, unsubscribe } = await hub.subscribe(key, (b) => {
    queue.push(b);
    notify?.();
  });
  void sse.closed.then(() => notify?.());
  let cursor = lastEventId ?? '0-0';
  const send = (entries: FeedEntry[]) => {
    for (const e of entries) {
      if (compareStreamIds(e.id, cursor) <= 0) continue;
      if (!sse.send({ id: e.id, event: e.kind, data: e.data })) return;
      cursor = e.id;
    }
  };
  try {
    if (lastEventId !== undefined) send(await hub.range(key, lastEventId));
    else cursor = position;
    while (sse.isOpen) {
      const batch = queue.shift();
      if (!batch) {
        await new Promise<void>((r) => (notify = r));
        notify = undefined;
        continue;
      }
      if (compareStreamIds(batch.from, cursor) > 0) send(await hub.range(key, cursor, batch.from));
      send(batch.entries);
    }
  } finally {
    unsubscribe();
  }
}

/** `?last_event_id=` of both live routes. */
export const LiveQuery = z.object({
  last_event_id: z
    .string()
    .regex(STREAM_ID, 'must be a feed entry id <ms>-<seq> as sent in `id:`')
    .optional()
    .openapi({ description: 'resume after this entry (same as the Last-Event-ID header, which wins)' }),
});

/** Where a client resumes: the `Last-Event-ID` header (checked here, a 400 naming it), else the query. */
export function resumePoint(req: Request, query: z.infer<typeof LiveQuery>): string | undefined {
  const header = req.get('last-event-id');
  if (header !== undefined && !STREAM_ID.test(header))
    throw badRequest([{ field: 'Last-Event-ID', message: 'must be a feed entry id <ms>-<seq> as sent in `id:`' }]);
  return header ?? query.last_event_id;
}

export interface FeedServing {
  hub: FeedHub;
  log: Logger;
  sse?: SseOptions;
  /** Caps open streams per key and process and ends a revoked key's streams (api/streams.ts). */
  streams?: StreamLimiter;
}

/**
 * Serves one feed stream to one client as Server-Sent Events until it goes away: a 503 before the
 * stream opens when Redis does not answer (`fallback` names what to read instead), then the stream
 * lease, the SSE stream and followFeed, released whatever ends it.
 */
export async function serveFeed(
  d: FeedServing,
  feedKey: string,
  keyId: string,
  lastEventId: string | undefined,
  res: Response,
  o: { fallback: string; logContext?: Record<string, unknown> },
): Promise<void> {
  await d.hub.lastId(feedKey).catch((err: unknown) => {
    d.log.warn({ err: messageOf(err), ...o.logContext }, 'live feed unavailable: Redis does not answer');
    throw new HttpProblem({
      type: 'https://vigil.dev/problems/live-feed-unavailable',
      title: 'Service Unavailable',
      status: 503,
      detail: `the live feed is unavailable (Redis does not answer); retry later or read ${o.fallback}`,
    });
  });
  const lease = d.streams?.acquire(keyId, res);
  const sse = new SseStream(res, d.sse ?? defaultSseOptions);
  lease?.attach(sse);
  recordSseClients('live', 1);
  try {
    await followFeed(d.hub, feedKey, lastEventId, sse);
  } catch (err) {
    d.log.warn({ err: messageOf(err), ...o.logContext }, 'live feed ended by an error');
  } finally {
    recordSseClients('live', -1);
    sse.end();
    lease?.release();
  }
}
