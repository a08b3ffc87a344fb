import type { RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';

/**
 * Every response of Vigil's HTTP services carries `X-Request-Id` (the caller's when well-formed,
 * else a new one) and the `traceparent` of its server span, so a caller can find the trace.
 *
 * It also names the server span by its route (`GET /v1/sessions/:id`, attribute `http.route`): the
 * HTTP instrumentation reads the route from the request's RPC metadata when the response finishes,
 * and this reads it from Express's matched route (`req.route`, set once the router picks a route;
 * none for a 404, whose span stays `GET`). Express's own instrumentation did this, with a span per
 * route handler and a wrapper around every router layer; it is off (core/telemetry.ts).
 */
export const requestContext: RequestHandler = (req, res, next) => {
  const incoming = req.get('x-request-id');
  res.setHeader('X-Request-Id', incoming && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID());
  const ctx = trace.getActiveSpan()?.spanContext();
  if (ctx) {
    res.setHeader('traceparent', `00-${ctx.traceId}-${ctx.spanId}-0${ctx.traceFlags.toString(16)}`);
    const rpc = getRPCMetadata(context.active());
    if (rpc?.type === RPCType.HTTP) {
      Object.defineProperty(rpc, 'route', {
        get: () => (req.route ? `${req.baseUrl}${String((req.route as { path: unknown }).path)}` : undefined),
        configurable: true,
        enumerable: true,
      });
    }
  }
  next();
};
