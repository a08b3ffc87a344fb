import type { Logger } from '../core/logger';
import { messageOf } from '../core/errors';
import { tooManyRequests } from '../core/http/problem';
import type { SseStream } from './sse';

/**
 * Bounds the long-lived streams (live feed and playback, both SSE) of one API process: at most
 * `perKey` open per API key and `max` in all; one more is a 429 problem with `Retry-After`. A stream
 * holds a socket, a Redis subscription or a playback timeline for as long as the client likes, so
 * without a cap one key (or a few) could hold every connection the process has.
 *
 * Revocation: authentication happens once, when a stream opens, and the verifier cache may trust a
 * key for `VIGIL_API_KEY_CACHE_TTL_MS` (30 s) after that. So every `recheckMs` (at most 10 s) the keys
 * of the open streams are looked up again, directly in PostgreSQL (`isActive`, not cached), and the
 * streams of a key that was revoked (or deleted) are ended: within `recheckMs` plus one query of the
 * revocation. A failed lookup ends nothing (PostgreSQL down must not cut every dashboard) and is
 * tried again at the next period.
 */
interface StreamLimitOptions {
  perKey: number;
  max: number;
  /** Which of these key ids are still active (e.g. `activeApiKeys`); uncached. */
  isActive: (keyIds: readonly string[]) => Promise<Set<string>>;
  /** How often open streams' keys are checked again (default 5 000 ms; at most 10 000). */
  recheckMs?: number;
  log: Logger;
}

interface StreamLease {
  /** Ends `sse` if its key is revoked; the lease is released when the stream closes. */
  attach(sse: SseStream): void;
  /** Gives the slot back (idempotent); for a stream that never opened. */
  release(): void;
}

const RETRY_AFTER_S = 5;

export class StreamLimiter {
  private readonly byKey = new Map<string, Set<symbol>>();
  private readonly streams = new Map<symbol, { keyId: string; sse?: SseStream }>();
  private timer?: NodeJS.Timeout;
  private readonly recheckMs: number;
  private checking = false;

  constructor(private readonly opts: StreamLimitOptions) {
    this.recheckMs = Math.min(opts.recheckMs ?? 5_000, 10_000);
  }

  /** Streams open now: in all and of one key. */
  open(keyId?: string): number {
    return keyId === undefined ? this.streams.size : (this.byKey.get(keyId)?.size ?? 0);
  }

  /** Takes a slot for a stream of `keyId`; throws 429 (with `Retry-After`) over either cap. */
  acquire(keyId: string, res?: { setHeader(name: string, value: string): unknown }): StreamLease {
    const mine = this.byKey.get(keyId)?.size ?? 0;
    const over =
      mine >= this.opts.perKey
        ? `this key has ${mine} streams open, at most ${this.opts.perKey} (VIGIL_API_STREAMS_PER_KEY); close one first`
        : this.streams.size >= this.opts.max
          ? `this server has ${this.streams.size} streams open, at most ${this.opts.max} (VIGIL_API_STREAMS_MAX); retry later`
          : undefined;
    if (over) {
      res?.setHeader('Retry-After', String(RETRY_AFTER_S));
      throw tooManyRequests(over);
    }
    const id = Symbol(keyId);
    this.streams.set(id, { keyId });
    let set = this.byKey.get(keyId);
    if (!set) this.byKey.set(keyId, (set = new Set()));
    set.add(id);
    this.schedule();
    const release = () => {
      if (!this.streams.delete(id)) return;
      set.delete(id);
      if (set.size === 0 && this.byKey.get(keyId) === set) this.byKey.delete(keyId);
      if (this.streams.size === 0) this.stop();
    };
    return {
      attach: (sse) => {
        const entry = this.streams.get(id);
        if (!entry) return;
        entry.sse = sse;
        void sse.closed.then(release);
      },
      release,
    };
  }

  /** Checks the open streams' keys now; ends the streams of keys no longer active. Returns how many ended. */
  async recheck(): Promise<number> {
    if (this.checking || this.byKey.size === 0) return 0;
    this.checking = true;
    try {
      const keyIds = [...this.byKey.keys()];
      const active = await this.opts.isActive(keyIds);
      let ended = 0;
      for (const keyId of keyIds) {
        if (active.has(keyId)) continue;
        for (const id of [...(this.byKey.get(keyId) ?? [])]) {
          const sse = this.streams.get(id)?.sse;
          if (sse?.isOpen) {
            sse.end();
            ended++;
          }
        }
      }
      if (ended) this.opts.log.info({ ended }, 'streams of revoked API keys ended');
      return ended;
    } catch (err) {
      this.opts.log.warn({ err: messageOf(err) }, 'could not re-check the keys of open streams; trying again later');
      return 0;
    } finally {
      this.checking = false;
    }
  }

  /** Stops the periodic re-check (it also stops by itself when no stream is open). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.recheck(), this.recheckMs);
    this.timer.unref();
  }
}
