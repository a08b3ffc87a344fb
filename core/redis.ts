import Redis from 'ioredis';

export type { Redis };

/**
 * The Redis client: one per process. Commands fail fast while disconnected (no offline queue), so a
 * Redis outage degrades reads to PostgreSQL instead of hanging requests.
 */
export function createRedis(url: string): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
}
