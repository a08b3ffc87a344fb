import Redis from 'ioredis';

export type { Redis };

/**
 * The Redis client: one per process. Commands fail fast while disconnected (no offline queue), so a
 * Redis outage degrades reads to PostgreSQL instead of hanging requests.
 *
 * `autoPipelining`: commands issued in the same tick go out as one pipeline, one socket write for the
 * API's concurrent reads instead of one each (MULTI, CLIENT and explicit pipelines are not merged).
 * With tracing on too: ioredis is patched (patches/ioredis+5.11.1.patch) to send each pipelined
 * command from the async context it was issued in. Without that, the ioredis instrumentation recorded
 * every command of a pipeline in the trace of the request that issued the first one
 * (test/trace.e2e.spec.ts checks that concurrent reads keep their own Redis spans).
 */
export function createRedis(url: string, opts: { autoPipelining?: boolean } = {}): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    enableAutoPipelining: opts.autoPipelining ?? false,
  });
}
