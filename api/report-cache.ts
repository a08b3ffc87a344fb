import type { Logger } from '../core/logger';
import type { Redis } from '../core/redis';
import { softRedis } from './redis-read';
import { redisKeys } from '../core/redis-keys';

/**
 * Cache-aside for report answers, per tenant, in Redis. Entries live under the tenant's current
 * generation (keys: core/redis-keys.ts), with a TTL; `invalidateTenantCache` (core/cache.ts) bumps
 * the generation, so every older entry is unreachable at once and
 * expires by itself. Redis down: the answer is computed from PostgreSQL every time (`bypass`), the
 * request never fails because of the cache.
 */
type CacheOutcome = 'hit' | 'miss' | 'bypass';

interface ReportCacheOptions {
  redis: Redis;
  prefix: string;
  ttlS: number;
  log: Logger;
}

export class ReportCache {
  constructor(private readonly o: ReportCacheOptions) {}

  /** The cached answer named `name` for the tenant, else `compute()` stored for `ttlS` seconds. */
  async get<T>(tenantId: string, name: string, compute: () => Promise<T>): Promise<{ value: T; cache: CacheOutcome }> {
    const { redis, prefix, ttlS, log } = this.o;
    if (ttlS === 0) return { value: await compute(), cache: 'bypass' };
    const gen = await softRedis(log, 'cache generation', () => redis.get(redisKeys(prefix).cacheGeneration(tenantId)));
    if (gen === undefined) return { value: await compute(), cache: 'bypass' };
    const key = redisKeys(prefix).cacheEntry(tenantId, gen, name);
    const hit = await softRedis(log, 'cache get', () => redis.get(key));
    if (hit) {
      try {
        return { value: JSON.parse(hit) as T, cache: 'hit' };
      } catch {
        // a corrupt entry is recomputed and overwritten
      }
    }
    const value = await compute();
    const stored = await softRedis(log, 'cache set', () => redis.set(key, JSON.stringify(value), 'EX', ttlS));
    return { value, cache: hit === undefined || stored === undefined ? 'bypass' : 'miss' };
  }
}
