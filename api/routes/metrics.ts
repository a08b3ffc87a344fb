import { Router } from 'express';
import { metricsRequestHandler } from '../../core/telemetry';

/**
 * `GET /metrics`: the process's OpenTelemetry metrics as Prometheus text (the API's request, error,
 * latency, cache and SSE instruments of api/metrics.ts, plus the HTTP/runtime ones the SDK records).
 * Unauthenticated, like `/health/ready`, for scrapers on the internal network; it holds counts and
 * timings by route template, never ids or tenant data.
 */
export function metricsRouter(): Router {
  const handler = metricsRequestHandler();
  const r = Router();
  r.get('/metrics', (req, res) => handler(req, res));
  return r;
}
