import express, { type Express } from 'express';
import type { Pool } from '../core/db';
import type { Logger } from '../core/logger';
import { healthRouter, type Check } from './routes/health';
import { requestContext } from './request-context';
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
  app.use(requestContext);
  app.use(healthRouter(deps.checks));
  app.use(sessionsRouter(deps.pool));
  app.use((req) => {
    throw notFound(`route ${req.method} ${req.path}`);
  });
  app.use(problemHandler(deps.log));
  return app;
}
