import { Router } from 'express';
import { z } from 'zod';
import { metricsHandler } from '../../core/metrics';
import { registry } from '../openapi';

let documented = false;
/** `/metrics`, `/health/live`, `/health/ready` and `/health` in the OpenAPI document (they are not `route()` routes). */
function document(): void {
  if (documented) return;
  documented = true;
  const text = (description: string, type = 'text/plain') => ({
    description,
    content: { [type]: { schema: z.string() } },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus text: requests, 5xx errors, latency by route template, cache hits, SSE clients',
    tags: ['operations'],
    responses: { 200: text('Prometheus text exposition format') },
  });
  registry.registerPath({
    method: 'get',
    path: '/health/live',
    summary: 'The process answers',
    tags: ['operations'],
    responses: { 200: text('{"status":"up"}', 'application/json') },
  });
  registry.registerPath({
    method: 'get',
    path: '/health/ready',
    summary: 'Each dependency and the projection lag (VIGIL_READY_MAX_LAG)',
    tags: ['operations'],
    responses: {
      200: text('up or degraded (an optional dependency is down), per check', 'application/json'),
      503: text('problem+json naming the failed checks, with every check', 'application/problem+json'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/health',
    summary: 'Full report: versions, TimescaleDB, lag, job queues, process and host (admin key)',
    tags: ['operations'],
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    responses: { 200: text('the report', 'application/json'), 401: text('no key'), 403: text('not an admin key') },
  });
}

/**
 * `GET /metrics`: the process's OpenTelemetry metrics as Prometheus text (the API's request, error,
 * latency, cache and SSE instruments of api/metrics.ts, `vigil_ready`, `vigil_build_info`, process
 * metrics, plus the HTTP/runtime ones the SDK records; docs/metrics.md). The same text is on
 * VIGIL_METRICS_HOST:VIGIL_METRICS_PORT when that port is set.
 * Unauthenticated, like `/health/ready`, for scrapers on the internal network; it holds counts and
 * timings by route template, never ids or tenant data.
 */
export function metricsRouter(): Router {
  document();
  const handler = metricsHandler();
  const r = Router();
  r.get('/metrics', (req, res) => handler(req, res));
  return r;
}
