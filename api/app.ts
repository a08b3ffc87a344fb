import express, { type Express } from 'express';
import { randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import type { Pool } from '../core/db';
import type { Logger } from '../core/logger';
import { healthRouter, type Check } from './routes/health';
import { sessionsRouter } from './routes/sessions';
import { notFound, problemHandler } from './problem';

export interface ApiDeps {
  pool: Pool;
  log: Logger;
  /** Dependency checks for /health/ready, by name. */
  checks: Record<string, Check>;
}

/**
 * The Express app, with no listening socket (tests drive it directly). Every response carries
 * `X-Request-Id` (the caller's, or a new one) and `traceparent` of its server span.
 */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    const incoming = req.get('x-request-id');
    const id = incoming && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    const ctx = trace.getActiveSpan()?.spanContext();
    if (ctx) res.setHeader('traceparent', `00-${ctx.traceId}-${ctx.spanId}-0${ctx.traceFlags.toString(16)}`);
    next();
  });
  app.use(healthRouter(deps.checks));
  app.use(sessionsRouter(deps.pool));
  app.use((req) => {
    throw notFound(`route ${req.method} ${req.path}`);
  });
  app.use(problemHandler(deps.log));
  return app;
}
