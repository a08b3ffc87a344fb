import type { Request, RequestHandler, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Span } from '@opentelemetry/api';

/**
 * The first middleware of Vigil's HTTP services (API and ingest gateway). Every response carries
 * `X-Request-Id` (the caller's when well-formed, else a new one), and the rest of the request runs
 * inside its HTTP server span.
 *
 * The server span is made here, not by `@opentelemetry/instrumentation-http`, whose incoming side is
 * off (core/telemetry.ts): that instrumentation cost a cached API read more than its own handling,
 * sampled or not (it computed every attribute, re-bound every listener of the request and the
 * response, and recorded a duration histogram Vigil already records in api/metrics.ts; see
 * bench/README.md). The span:
 * - continues the caller's `traceparent` (W3C, through the global propagator) and obeys the sampler, so
 *   an unsampled request still runs in its trace context (log lines and Kafka headers carry its ids);
 * - is named by the matched route when the response ends (`get /v1/sessions/:id`, attribute
 *   `http.route`; a path no route matched stays `get`), never by the path, which would make one name
 *   per session;
 * - carries the stable HTTP semantic-convention attributes, its status code, and an error status for
 *   5xx answers or a client that went away first;
 * - is named in the response's `traceparent` header, so a caller can find the trace (only while
 *   tracing is on: without a context manager no span is active and no header is sent).
 * Bodies: express.json's reader (raw-body) calls back in the async context it was called from, so
 * what runs after the body parser is still inside the span (the trace e2e spec follows a gateway POST
 * into Kafka).
 */
export const requestContext: RequestHandler = (req, res, next) => {
  const incoming = req.get('x-request-id');
  res.setHeader('X-Request-Id', incoming && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID());
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = tracer.startSpan(req.method.toLowerCase(), { kind: SpanKind.SERVER }, parent);
  if (span.isRecording()) {
    startAttributes(span, req);
    res.once('close', () => endSpan(span, req, res));
  }
  const ctx = trace.setSpan(parent, span);
  context.with(ctx, () => {
    const active = trace.getActiveSpan()?.spanContext();
    if (active)
      res.setHeader('traceparent', `00-${active.traceId}-${active.spanId}-0${active.traceFlags.toString(16)}`);
    next();
  });
};

/** A proxy: it follows whatever provider core/telemetry.ts registers, before or after this loads. */
const tracer = trace.getTracer('vigil-http');

function startAttributes(span: Span, req: Request): void {
  span.setAttributes({
    'http.request.method': req.method,
    'url.path': req.path,
    'url.scheme': req.protocol,
    'server.port': req.socket.localPort,
    'client.address': req.socket.remoteAddress,
    'network.protocol.version': req.httpVersion,
  });
  const agent = req.get('user-agent');
  if (agent) span.setAttribute('user_agent.original', agent.slice(0, 256));
}

/**
 * The route template a request matched (`/v1/sessions/:id`), undefined for a path no route matched.
 * Names server spans here and labels the API's request metrics (api/metrics.ts).
 */
export function routeOf(req: Request): string | undefined {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  // baseUrl is undefined again once a request fell through to Express's final handler.
  return typeof path === 'string' ? `${req.baseUrl ?? ''}${path}` : undefined;
}

function endSpan(span: Span, req: Request, res: Response): void {
  const route = routeOf(req);
  if (route) {
    span.updateName(`${req.method.toLowerCase()} ${route}`);
    span.setAttribute('http.route', route);
  }
  const eventStream = String(res.getHeader('content-type') ?? '').startsWith('text/event-stream');
  if (!res.writableFinished && !eventStream) {
    // The client went away before the whole answer was written. (An SSE stream ends that way.)
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'client closed the connection first' });
    span.setAttribute('error.type', 'aborted');
  } else {
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute('error.type', String(res.statusCode));
    }
  }
  span.end();
}
