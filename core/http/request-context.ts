import type { RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';

/**
 * Every response of Vigil's HTTP services carries `X-Request-Id` (the caller's when well-formed,
 * else a new one) and the `traceparent` of its server span, so a caller can find the trace.
 */
export const requestContext: RequestHandler = (req, res, next) => {
  const incoming = req.get('x-request-id');
  res.setHeader('X-Request-Id', incoming && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID());
  const ctx = trace.getActiveSpan()?.spanContext();
  if (ctx) res.setHeader('traceparent', `00-${ctx.traceId}-${ctx.spanId}-0${ctx.traceFlags.toString(16)}`);
  next();
};
