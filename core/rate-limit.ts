import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Redis } from './redis';
import type { Logger } from './logger';
import { messageOf } from './errors';

/**
 * A fixed-window counter per caller kept in Redis (atomic Lua INCRBY via rate-limiter-flexible), so
 * every instance of a service shares it. Used by the ingest gateway (events per second per key) and
 * the query API (requests per minute per key).
 *
 * Redis down or slow: the limiter fails OPEN (the request is allowed, a warning is logged at most
 * every 10 s). A rate counter protects against abuse; its absence must never fail a request.
 */
export interface RateDecision {
  allowed: boolean;
  /** Points allowed per window. */
  limit: number;
  /** Length of the window in seconds. */
  windowS: number;
  /** Points left in the current window; undefined when the limiter failed open. */
  remaining?: number;
  /** Milliseconds until the window resets; undefined when the limiter failed open. */
  resetMs?: number;
}

export interface RateLimiter {
  take(callerId: string, points: number): Promise<RateDecision>;
}

/** What a caller's shared counter holds after adding to it: points counted in the window, ms to its end. */
export interface WindowCount {
  consumed: number;
  resetMs: number;
}

interface RedisRateLimiterOptions {
  /** Points per window. */
  points: number;
  windowS: number;
  /** Redis key prefix; keys are `<prefix>:<caller id>`. */
  keyPrefix: string;
  /** A Redis answer slower than this counts as Redis being down (fail open). */
  timeoutMs?: number;
  log: Logger;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly limiter: RateLimiterRedis;
  private readonly limit: number;
  private readonly windowS: number;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private lastWarning = 0;
  /** Requests allowed without a counter because Redis did not answer. */
  failedOpen = 0;

  constructor(redis: Redis, opts: RedisRateLimiterOptions) {
    this.limit = opts.points;
    this.windowS = opts.windowS;
    this.timeoutMs = opts.timeoutMs ?? 250;
    this.log = opts.log;
    this.limiter = new RateLimiterRedis({
      storeClient: redis,
      points: opts.points,
      duration: opts.windowS,
      keyPrefix: opts.keyPrefix,
      // While ioredis reconnects, answer at once instead of waiting for the timeout.
      rejectIfRedisNotReady: true,
    });
  }

  get points(): number {
    return this.limit;
  }

  get window(): number {
    return this.windowS;
  }

  /**
   * Adds `points` to the caller's shared counter whatever the limit (a refused take counts too, as in
   * `take`) and returns the count; undefined when Redis did not answer (logged as in `take`).
   */
  async count(callerId: string, points: number): Promise<WindowCount | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const res = await Promise.race([
        this.limiter.consume(callerId, points),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      return { consumed: res.consumedPoints, resetMs: res.msBeforeNext };
    } catch (err) {
      if (err instanceof RateLimiterRes) return { consumed: err.consumedPoints, resetMs: err.msBeforeNext };
      this.failedOpen += 1;
      this.warnUnavailable(err);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private warnUnavailable(err: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning > 10_000) {
      this.lastWarning = now;
      this.log.warn(
        { err: messageOf(err), failedOpen: this.failedOpen },
        'rate limiter unavailable, allowing (fail open)',
      );
    }
  }

  async take(callerId: string, points: number): Promise<RateDecision> {
    const base = { limit: this.limit, windowS: this.windowS };
    let timer: NodeJS.Timeout | undefined;
    try {
      const res = await Promise.race([
        this.limiter.consume(callerId, points),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      return { ...base, allowed: true, remaining: res.remainingPoints, resetMs: res.msBeforeNext };
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        return { ...base, allowed: false, remaining: err.remainingPoints, resetMs: err.msBeforeNext };
      }
      this.failedOpen += 1;
      this.warnUnavailable(err);
      return { ...base, allowed: true };
    } finally {
      clearTimeout(timer);
    }
  }
}
