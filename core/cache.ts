import type { Redis } from './redis';

/**
 * Keys of the API's cache-aside entries (api/report-cache.ts), here because writers outside the API
 * (the session-report job) invalidate them too. Entries of a tenant live under its current
 * generation; bumping the generation makes every older entry unreachable at once (they expire by TTL).
 */
export const cacheGenerationKey = (prefix: string, tenantId: string): string => `${prefix}:api:cache:${tenantId}:gen`;

export const cacheEntryKey = (prefix: string, tenantId: string, generation: string | null, name: string): string =>
  `${prefix}:api:cache:${tenantId}:g${generation ?? 0}:${name}`;

/** Makes every cached answer of the tenant stale (call after reports or projections change). */
export async function invalidateTenantCache(redis: Redis, prefix: string, tenantId: string): Promise<number> {
  return redis.incr(cacheGenerationKey(prefix, tenantId));
}
