import Redis from 'ioredis';

export type { Redis };

/**
 * The Redis client: one per process. Commands fail fast while disconnected (no offline queue), so a
 * Redis outage degrades reads to PostgreSQL instead of hanging requests. Commands issued in the same
 * tick go out as one pipeline (auto-pipelining: one socket write for the API's concurrent reads instead
 * of one each; MULTI, CLIENT and explicit pipelines are not merged).
 */
export function createRedis(url: string): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    enableAutoPipelining: true,
  });
}
