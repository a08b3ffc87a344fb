import { compareStreamIds, type FeedBatch, type FeedEntry, type FeedHub } from './feed-hub';
import type { SseStream } from './sse';

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
