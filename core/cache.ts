import type { Redis } from './redis';
import { redisKeys } from './redis-keys';

/**
 * The API's cache-aside entries (api/report-cache.ts; keys in redis-keys.ts) are invalidated by
 * writers outside the API too (the session-report job), hence here. Entries of a tenant live under
 * its current generation; bumping the generation makes every older entry unreachable at once (they
 * expire by TTL).
 */

/** Makes every cached answer of the tenant stale (call after reports or projections change). */
export async function invalidateTenantCache(redis: Redis, prefix: string, tenantId: string): Promise<number> {
  return redis.incr(redisKeys(prefix).cacheGeneration(tenantId));
}
