import Redis from 'ioredis';

export type { Redis };

/**
 * The Redis client: one per process. Commands fail fast while disconnected (no offline queue), so a
 * Redis outage degrades reads to PostgreSQL instead of hanging requests.
 *
 * `autoPipelining`: commands issued in the same tick go out as one pipeline, one socket write for the
 * API's concurrent reads instead of one each (MULTI, CLIENT and explicit pipelines are not merged).
 * Only with tracing off: the ioredis instrumentation records a pipelined command in the context that
 * sent the pipeline, so every Redis span of a batch landed in the trace of the request that issued
 * the first command (test/trace.e2e.spec.ts checks concurrent reads keep their own spans).
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
