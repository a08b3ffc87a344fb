import type { Redis } from '../core/redis';
import type { Logger } from '../core/logger';
import { messageOf } from '../core/errors';

/**
 * One entry of a session's live feed stream (`<prefix>:tenant:<t>:session:<id>:feed`, written by the Redis
 * projection, see projections/redis/model.ts): its stream id and fields.
 */
export interface FeedEntry {
  id: string;
  kind: string;
  ts: number;
  eventId: string;
  /** The event as JSON, as the projection wrote it. */
  data: string;
}

/**
 * What the hub read from one stream in one XREAD: every entry after `from` up to the last one, with
 * nothing in between left out. Consecutive batches of a stream follow each other (the next `from` is
 * the previous batch's last id), so a listener that knows where it stands can tell whether it missed
 * anything and fetch exactly that with `range`.
 */
export interface FeedBatch {
  from: string;
  entries: FeedEntry[];
}

type FeedListener = (batch: FeedBatch) => void;

/** Stream ids `<ms>-<seq>` compared as numbers. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint?];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint?];
  if (am !== bm) return am < bm ? -1 : 1;
  const x = as ?? 0n;
  const y = bs ?? 0n;
  return x === y ? 0 : x < y ? -1 : 1;
}

export const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

type RawEntry = [id: string, fields: string[]];

function entryOf([id, fields]: RawEntry): FeedEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { id, kind: f.kind ?? 'message', ts: Number(f.ts), eventId: f.event_id ?? '', data: f.data ?? 'null' };
}

interface StreamState {
  /** Where the next XREAD of this stream starts; unset until `ready` (the stream's last id) resolves. */
  position?: string;
  ready: Promise<void>;
  listeners: Set<FeedListener>;
}

interface FeedHubOptions {
  /** How long one XREAD blocks (it is also interrupted whenever a stream gains its first listener). */
  blockMs: number;
  /** Entries per stream per XREAD. */
  count: number;
}

/**
 * The process's one reader of live feed streams: a loop of XREAD BLOCK over every stream that has at
 * least one listener, on its own Redis connection (a blocked connection can run nothing else), fanning
 * each batch out to that stream's listeners. Listeners must not block: the SSE route queues per client.
 *
 * A stream joins the loop at its last id when its first listener subscribes; adding one interrupts the
 * blocked XREAD (CLIENT UNBLOCK from the command connection) so it is read at once. When Redis is down the loop retries every
 * second; listeners simply receive nothing meanwhile and catch up by `range` on the next batch.
 */
export class FeedHub {
  private readonly streams = new Map<string, StreamState>();
  private readonly reader: Redis;
  private readerId?: number;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake?: () => void;
  private blocked = false;

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly options: FeedHubOptions = { blockMs: 2_000, count: 500 },
  ) {
    // Unlike the shared client, the reader queues commands while (re)connecting: it only ever runs
    // the loop's XREAD, and a command waiting for the connection is what the loop wants. One blocking
    // command at a time: nothing to pipeline.
    this.reader = redis.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      lazyConnect: true,
      enableAutoPipelining: false,
    });
    this.reader.on('error', (err) => this.log.debug({ err: err.message }, 'feed hub redis error'));
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Adds a listener to a stream. Resolves once the hub knows where it reads that stream from: the
   * returned `position` is the id after which the listener's batches start (for a stream new to the
   * hub, its last id at this moment). A listener that starts at `position` misses nothing.
   */
  async subscribe(key: string, listener: FeedListener): Promise<{ position: string; unsubscribe: () => void }> {
    let s = this.streams.get(key);
    if (!s) {
      const entry: StreamState = { listeners: new Set(), ready: Promise.resolve() };
      entry.ready = this.lastId(key).then((id) => {
        entry.position = id;
      });
      this.streams.set(key, (s = entry));
      this.start();
    }
    const state = s;
    state.listeners.add(listener);
    const unsubscribe = () => {
      state.listeners.delete(listener);
      if (state.listeners.size === 0 && this.streams.get(key) === state) this.streams.delete(key);
    };
    try {
      await state.ready;
    } catch (err) {
      // The next subscriber tries again.
      if (this.streams.get(key) === state) this.streams.delete(key);
      throw err;
    }
    this.interrupt();
    return { position: state.position!, unsubscribe };
  }

  /** Entries after `after` (exclusive) up to `until` (inclusive; default: the end), oldest first. */
  async range(key: string, after: string, until = '+'): Promise<FeedEntry[]> {
    const out: FeedEntry[] = [];
    let from = after;
    for (;;) {
      const raw = (await this.redis.xrange(key, `(${from}`, until, 'COUNT', 1000)) as RawEntry[];
      out.push(...raw.map(entryOf));
      if (raw.length < 1000) return out;
      from = raw[raw.length - 1]![0];
    }
  }

  /** The stream's newest entry id, or `0-0` when it is empty or absent. */
  async lastId(key: string): Promise<string> {
    const raw = (await this.redis.xrevrange(key, '+', '-', 'COUNT', 1)) as RawEntry[];
    return raw[0]?.[0] ?? '0-0';
  }

  async close(): Promise<void> {
    this.running = false;
    this.streams.clear();
    this.interrupt();
    this.wake?.();
    await this.loopDone;
    this.reader.disconnect();
  }

  private start() {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Makes a blocked XREAD return now, so the next one includes a newly added stream. */
  private interrupt() {
    this.wake?.();
    if (this.blocked && this.readerId !== undefined) {
      this.redis.client('UNBLOCK', this.readerId).catch(() => {});
    }
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        const readable = [...this.streams].filter(([, s]) => s.position !== undefined);
        if (readable.length === 0) {
          await new Promise<void>((r) => (this.wake = r));
          this.wake = undefined;
          continue;
        }
        if (this.readerId === undefined) this.readerId = Number(await this.reader.client('ID'));
        const keys = readable.map(([k]) => k);
        const positions = readable.map(([, s]) => s.position!);
        this.blocked = true;
        let res: [string, RawEntry[]][] | null;
        try {
          res = (await this.reader.xread(
            'COUNT',
            this.options.count,
            'BLOCK',
            this.options.blockMs,
            'STREAMS',
            ...keys,
            ...positions,
          )) as [string, RawEntry[]][] | null;
        } finally {
          this.blocked = false;
        }
        for (const [key, raw] of res ?? []) {
          const s = this.streams.get(key);
          if (!s || s.position === undefined || raw.length === 0) continue; // unsubscribed meanwhile
          const batch: FeedBatch = { from: s.position, entries: raw.map(entryOf) };
          s.position = raw[raw.length - 1]![0];
          for (const l of [...s.listeners]) {
            try {
              l(batch);
            } catch (err) {
              this.log.warn({ err: messageOf(err) }, 'feed listener failed');
            }
          }
        }
      } catch (err) {
        if (!this.running) break;
        this.log.warn({ err: messageOf(err) }, 'feed hub read failed; retrying in 1 s');
        this.readerId = undefined;
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }
}
