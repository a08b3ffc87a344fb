import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Redis } from '../../core/redis';
import type { Logger } from '../../core/logger';
import { messageOf } from '../../core/errors';

/**
 * Per-API-key ingest rate, counted in events (not requests): a device sending 1 000 events in one
 * request costs the same as 1 000 requests of one, so batching is neither punished nor a way around
 * the limit. The counter lives in Redis (a fixed one-second window per key, atomic Lua INCRBY via
 * rate-limiter-flexible), so every gateway instance shares it.
 *
 * Redis down or slow: the limiter fails OPEN (the request is accepted, a warning is logged at most
 * every 10 s). Refusing telemetry because the rate counter is unavailable would lose data for a
 * protection that matters only under abuse; Kafka stays the bound on throughput.
 */
export interface RateDecision {
  allowed: boolean;
  /** Events per second allowed to this key. */
  limit: number;
  /** Events left in the current window; undefined when the limiter failed open. */
  remaining?: number;
  /** Milliseconds until the window resets; undefined when the limiter failed open. */
  resetMs?: number;
}

export interface RateLimiter {
  take(keyId: string, events: number): Promise<RateDecision>;
}

export interface EventRateLimiterOptions {
  eventsPerSec: number;
  /** Redis key prefix; keys are `<prefix>:<key_id>`. */
  keyPrefix: string;
  /** A Redis answer slower than this counts as Redis being down (fail open). */
  timeoutMs?: number;
  log: Logger;
}

export class EventRateLimiter implements RateLimiter {
  private readonly limiter: RateLimiterRedis;
  private readonly limit: number;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private lastWarning = 0;
  /** Requests accepted without a counter because Redis did not answer. */
  failedOpen = 0;

  constructor(redis: Redis, opts: EventRateLimiterOptions) {
    this.limit = opts.eventsPerSec;
    this.timeoutMs = opts.timeoutMs ?? 250;
    this.log = opts.log;
    this.limiter = new RateLimiterRedis({
      storeClient: redis,
      points: opts.eventsPerSec,
      duration: 1,
      keyPrefix: opts.keyPrefix,
      // While ioredis reconnects, answer at once instead of waiting for the timeout.
      rejectIfRedisNotReady: true,
    });
  }

  async take(keyId: string, events: number): Promise<RateDecision> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const res = await Promise.race([
        this.limiter.consume(keyId, events),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      return { allowed: true, limit: this.limit, remaining: res.remainingPoints, resetMs: res.msBeforeNext };
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        return { allowed: false, limit: this.limit, remaining: err.remainingPoints, resetMs: err.msBeforeNext };
      }
      this.failedOpen += 1;
      const now = Date.now();
      if (now - this.lastWarning > 10_000) {
        this.lastWarning = now;
        this.log.warn(
          { err: messageOf(err), failedOpen: this.failedOpen },
          'rate limiter unavailable, accepting (fail open)',
        );
      }
      return { allowed: true, limit: this.limit };
    } finally {
      clearTimeout(timer);
    }
  }
}
