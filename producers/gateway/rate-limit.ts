import type { Redis } from '../../core/redis';
import type { Logger } from '../../core/logger';
import { RedisRateLimiter } from '../../core/rate-limit';

export type { RateDecision, RateLimiter } from '../../core/rate-limit';

/**
 * Per-API-key ingest rate, counted in events (not requests): a device sending 1 000 events in one
 * request costs the same as 1 000 requests of one, so batching is neither punished nor a way around
 * the limit. A one-second window in Redis shared by every gateway instance; fails open when Redis is
 * down (refusing telemetry because the counter is unavailable would lose data; Kafka stays the bound).
 */
interface EventRateLimiterOptions {
  eventsPerSec: number;
  /** Redis key prefix; keys are `<prefix>:<key_id>`. */
  keyPrefix: string;
  timeoutMs?: number;
  log: Logger;
}

export class EventRateLimiter extends RedisRateLimiter {
  constructor(redis: Redis, opts: EventRateLimiterOptions) {
    super(redis, {
      points: opts.eventsPerSec,
      windowS: 1,
      keyPrefix: opts.keyPrefix,
      timeoutMs: opts.timeoutMs,
      log: opts.log,
    });
  }
}
