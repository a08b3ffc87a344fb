import type { Counter, Histogram, UpDownCounter } from '@opentelemetry/api';
import { vigilMeter } from '../core/metrics';
import type { RequestHandler } from 'express';
import { routeOf } from '../core/http/request-context';

/**
 * The API's own instruments (served as Prometheus text on `/metrics`, see core/metrics.ts; docs/metrics.md):
 *
 * - `vigil_api_requests_total{method,route,status}`: every answered request; rate = requests/s.
 * - `vigil_api_errors_total{method,route,status}`: answers with status >= 500 (server errors; 4xx are
 *   the caller's and show in the requests counter by status).
 * - `vigil_api_request_duration_seconds{method,route}`: latency histogram, by route template
 *   (`/v1/sessions/:id`, never the raw path, so ids do not explode the series).
 * - `vigil_api_cache_hits_total` / `vigil_api_cache_misses_total{cache}`: cache-aside look-ups, from
 *   `recordCacheHit`/`recordCacheMiss` or, for any route, its `X-Cache: hit|miss|bypass` response
 *   header (cache = the route template; bypass, i.e. Redis down, counts as a miss); the hit ratio is
 *   hits / (hits + misses), also exported as the gauge `vigil_api_cache_hit_ratio{cache}` over the
 *   process's life.
 * - `vigil_api_sse_clients{stream}`: connected Server-Sent Events clients (live, playback).
 *
 * Instruments are created on first use, through `vigilMeter()`.
 */
interface Instruments {
  requests: Counter;
  errors: Counter;
  duration: Histogram;
  cacheHits: Counter;
  cacheMisses: Counter;
  sseClients: UpDownCounter;
}

let instruments: Instruments | undefined;
const cacheCounts = new Map<string, { hits: number; misses: number }>();

function get(): Instruments {
  if (instruments) return instruments;
  const meter = vigilMeter('vigil.api');
  const ratio = meter.createObservableGauge('vigil_api_cache_hit_ratio', {
    description: 'cache-aside hits / (hits + misses) since the process started',
  });
  ratio.addCallback((r) => {
    for (const [cache, c] of cacheCounts) if (c.hits + c.misses > 0) r.observe(c.hits / (c.hits + c.misses), { cache });
  });
  instruments = {
    requests: meter.createCounter('vigil_api_requests_total', { description: 'HTTP requests answered' }),
    errors: meter.createCounter('vigil_api_errors_total', { description: 'HTTP requests answered with a 5xx status' }),
    duration: meter.createHistogram('vigil_api_request_duration_seconds', {
      description: 'time from request to the end of the response, by route template',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] },
    }),
    cacheHits: meter.createCounter('vigil_api_cache_hits_total', {
      description: 'cache-aside look-ups answered by Redis',
    }),
    cacheMisses: meter.createCounter('vigil_api_cache_misses_total', {
      description: 'cache-aside look-ups that went to PostgreSQL (absent, expired or Redis down)',
    }),
    sseClients: meter.createUpDownCounter('vigil_api_sse_clients', {
      description: 'connected Server-Sent Events clients',
    }),
  };
  return instruments;
}

const countOf = (cache: string) => {
  let c = cacheCounts.get(cache);
  if (!c) cacheCounts.set(cache, (c = { hits: 0, misses: 0 }));
  return c;
};

/** A cache-aside read served from Redis. `cache` names the cached query, e.g. `session-report`. */
function recordCacheHit(cache: string): void {
  countOf(cache).hits += 1;
  get().cacheHits.add(1, { cache });
}

/** A cache-aside read that had to go to PostgreSQL. */
function recordCacheMiss(cache: string): void {
  countOf(cache).misses += 1;
  get().cacheMisses.add(1, { cache });
}

/** One more (+1) or one fewer (-1) connected SSE client of a stream kind. */
export function recordSseClients(stream: 'live' | 'playback', delta: 1 | -1): void {
  get().sseClients.add(delta, { stream });
}

/**
 * Counts and times every request when its response finishes (or the client goes away: SSE streams
 * count when they end). Mount first, so it sees every request including errors.
 */
export const requestMetrics: RequestHandler = (req, res, next) => {
  const t0 = performance.now();
  let done = false;
  const record = () => {
    if (done) return;
    done = true;
    const i = get();
    // The route template, or `unmatched` (404s of unknown paths).
    const route = routeOf(req) ?? 'unmatched';
    const status = String(res.statusCode);
    i.requests.add(1, { method: req.method, route, status });
    if (res.statusCode >= 500) i.errors.add(1, { method: req.method, route, status });
    i.duration.record((performance.now() - t0) / 1000, { method: req.method, route });
    const cache = res.getHeader('x-cache');
    if (cache === 'hit') recordCacheHit(route);
    else if (cache === 'miss' || cache === 'bypass') recordCacheMiss(route);
  };
  res.once('finish', record);
  res.once('close', record);
  next();
};
