import type { Request, RequestHandler, Response } from 'express';
import type { Counter, Histogram } from '@opentelemetry/api';
import { SECONDS_BUCKETS, vigilMeter } from '../../core/metrics';
import { isStream } from './batch';

/**
 * The ingest gateway's instruments (docs/metrics.md), recorded when each `/v1/ingest/<stream>` response
 * finishes: `vigil_gateway_requests_total` and `vigil_gateway_events_total{stream,outcome,reason}` and
 * `vigil_gateway_request_duration_seconds{stream,status}`. `stream` is the URL's stream or `unknown`;
 * `reason` is `""` when accepted, else what the route set with `refused()` or, for refusals before the
 * route's checks (authentication, body limits, the per-address limiter, start-up), one per status.
 */
interface Instruments {
  requests: Counter;
  events: Counter;
  duration: Histogram;
}
let instruments: Instruments | undefined;

function get(): Instruments {
  if (instruments) return instruments;
  const m = vigilMeter('vigil.gateway');
  instruments = {
    requests: m.createCounter('vigil_gateway_requests_total', {
      description: 'ingest requests, by what became of them (a refusal refuses every event of the request)',
    }),
    events: m.createCounter('vigil_gateway_events_total', {
      description: 'events of ingest requests whose body was a JSON array, by what became of them',
    }),
    duration: m.createHistogram('vigil_gateway_request_duration_seconds', {
      description: 'ingest request latency, seconds',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    }),
  };
  return instruments;
}

/** Refusal reasons of the checks that share a status with others. */
export type RefusalReason =
  | 'rule_violation'
  | 'ts_out_of_window'
  | 'schema'
  | 'tenant_mismatch'
  | 'foreign_session'
  | 'too_many_events'
  | 'rate_limited';

const REASON = Symbol('vigil.gateway.refusal');

/** Names why the route refuses this request (call before throwing the problem). */
export function refused(res: Response, reason: RefusalReason): void {
  (res.locals as Record<symbol, unknown>)[REASON] = reason;
}

/** The reason of a 400 listing event errors: all outside the ts window, any Avro schema error, else rules. */
export function reasonOfEventErrors(errors: readonly { rule?: string }[]): RefusalReason {
  if (errors.length > 0 && errors.every((e) => e.rule === 'ts_ahead' || e.rule === 'ts_too_old')) {
    return 'ts_out_of_window';
  }
  return errors.some((e) => !e.rule) ? 'schema' : 'rule_violation';
}

const BY_STATUS: Record<number, string> = {
  400: 'invalid_body',
  401: 'unauthenticated',
  403: 'not_device_key',
  404: 'unknown_stream',
  413: 'too_large',
  415: 'unsupported_media_type',
  429: 'address_rate_limited',
  503: 'unavailable',
};

function reasonOf(req: Request, res: Response): string {
  if (res.statusCode >= 200 && res.statusCode < 300) return '';
  const set = (res.locals as Record<symbol, unknown>)[REASON];
  if (typeof set === 'string') return set;
  return BY_STATUS[res.statusCode] ?? (res.statusCode >= 500 ? 'error' : 'other');
}

/** Mount as `app.use('/v1/ingest/:stream', ingestMetrics)` before anything that can refuse. */
export const ingestMetrics: RequestHandler = (req, res, next) => {
  const t0 = performance.now();
  // Read now: express resets req.params when an error leaves the route.
  const param = String(req.params.stream ?? '');
  const stream = isStream(param) ? param : 'unknown';
  let done = false;
  const record = () => {
    if (done) return;
    done = true;
    const i = get();
    const reason = reasonOf(req, res);
    const labels = { stream, outcome: reason === '' ? 'accepted' : 'refused', reason };
    i.requests.add(1, labels);
    const body: unknown = req.body;
    if (Array.isArray(body) && body.length > 0) i.events.add(body.length, labels);
    i.duration.record((performance.now() - t0) / 1000, { stream, status: String(res.statusCode) });
  };
  res.once('finish', record);
  res.once('close', record);
  next();
};
