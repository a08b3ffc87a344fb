import express, { type Express, type Router } from 'express';
import helmet from 'helmet';
import cors from 'cors';
import swaggerUi from 'swagger-ui-express';
import type { Producer } from 'kafkajs';
import type PgBoss from 'pg-boss';
import type { Config } from '../core/config';
import type { Pool } from '../core/db';
import type { Logger } from '../core/logger';
import type { Redis } from '../core/redis';
import { RedisRateLimiter, type RateLimiter } from '../core/rate-limit';
import { BatchedRateLimiter } from '../core/rate-limit-batched';
import { redisKeys } from '../core/redis-keys';
import type { TopicNames } from '../schemas/catalogue';
import { authenticate, requireRole, type KeyVerifier } from './auth';
import { openApiDocument } from './openapi';
import { notFound, problemHandler } from '../core/http/problem';
import { jsonBody } from '../core/http/body';
import { rateLimitPerAddress } from '../core/http/rate-limit';
import { apiProblemOf } from './problem';
import { rateLimitPerKey } from './rate-limit';
import { StreamLimiter } from './streams';
import { activeApiKeys } from '../core/api-keys';
import { requestContext } from '../core/http/request-context';
import { fullHealthRouter, healthRouter, type Check, type DependencyCheck } from '../core/http/health';
import { sessionsRouter } from './routes/sessions';
import { scoresRouter } from './routes/scores';
import { alertsRouter } from './routes/alerts';
import { reportsRouter } from './routes/reports';
import { exportRouter } from './routes/export';
import type { AvroSerde } from '../core/serde';
import type { SseOptions } from './sse';
import { requestMetrics } from './metrics';
import { metricsRouter } from './routes/metrics';
import { liveRoutes } from './routes/live';
import { playbackRoutes } from './routes/playback';
import { alertAckRoutes } from './routes/alerts-ack';
import { adminRoutes } from './routes/admin';
import { tenantLiveRoutes } from './routes/tenant-live';
import { uiSessionRoutes } from './routes/ui-session';
import { UiSessions } from './ui-session';
import { uiRouter } from './ui-static';
import { FeedHub } from './feed-hub';

/** What the API's routers get. Optional parts are there only in processes that need them. */
export interface ApiDeps {
  config: Config;
  pool: Pool;
  /** Read models, report cache and rate counters; every use degrades (never fails) when Redis is down. */
  redis: Redis;
  log: Logger;
  topics: TopicNames;
  verifier: KeyVerifier;
  /** Dependency checks for /health/ready, by name (a plain Check is required). */
  checks: Record<string, Check | DependencyCheck>;
  /**
   * Per-key request limiter; default: `config.api.ratePerMin` per minute shared in Redis, counted in
   * process far from the limit (core/rate-limit-batched.ts), failing open.
   */
  rateLimiter?: RateLimiter;
  /** Per-client-address limiter before authentication; default: Redis, `config.limits.apiAddressRatePerMin`. */
  addressLimiter?: RateLimiter;
  /** Open-stream caps and revocation of open streams; default: `config.limits`, keys re-checked in `pool`. */
  streams?: StreamLimiter;
  /** Kafka producer for commands (e.g. AcknowledgeAlert); routes that append commands need it. */
  producer?: Producer;
  /** pg-boss for admin jobs (replays, rebuilds). */
  boss?: PgBoss;
  /** Serde with the commands schema registered (with `producer`: POST /v1/alerts/:id/ack). */
  serde?: AvroSerde;
  /** SSE: the process's feed hub (default: one per app) and stream options (heartbeat, buffer bound). */
  live?: { hub?: FeedHub; sse?: SseOptions };
  /** The full `/health` report (operator key); absent: no `/health` route. */
  healthReport?: () => Promise<unknown>;
  /** The board's sign-in sessions; default: from `config.ui` (api/ui-session.ts). */
  uiSessions?: UiSessions;
}

type RouterFactory = (deps: ApiDeps) => Router;

/** Routers served without an API key (health; their paths are outside /v1). */
const publicRouters: RouterFactory[] = [
  (d) => healthRouter(d.checks),
  () => metricsRouter(),
  (d) => uiRouter(d.uiSessions),
  // The full report shows every tenant's lag and the hosts: an operator's, not a tenant admin's.
  (d) => fullHealthRouter(d.healthReport, [authenticate(d.verifier), requireRole('operator')], d.checks),
];

/** Routers of `/v1`: every request is authenticated and rate-limited before them. One line each. */
const v1Routers: RouterFactory[] = [
  sessionsRouter,
  scoresRouter,
  alertsRouter,
  reportsRouter,
  exportRouter,
  liveRoutes,
  playbackRoutes,
  alertAckRoutes,
  adminRoutes,
  tenantLiveRoutes,
  uiSessionRoutes,
];

/** Headers a browser client may read on a cross-origin response. */
const EXPOSED_HEADERS = [
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'RateLimit-Policy',
  'Retry-After',
  'X-Request-Id',
  'traceparent',
  'X-Cache',
];

/**
 * The Express app, with no listening socket (tests drive it directly). Every response carries
 * `X-Request-Id` and `traceparent`, helmet's security headers, and CORS headers for the origins of
 * `VIGIL_API_CORS_ORIGINS` (none by default). Every request first counts against its client address's
 * per-minute rate (429, before any key is looked at). `/health/live`, `/health/ready` and `/docs` need
 * no key; `/v1/*` needs one (401), counts against its per-minute rate (429), and takes only JSON bodies up to
 * `VIGIL_API_MAX_BODY_BYTES` (415, 413; malformed JSON or invalid UTF-8: 400). Every error is
 * application/problem+json.
 */
export function createApp(apiDeps: ApiDeps): Express {
  let deps = apiDeps;
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // The server span first, so everything after runs in the request's trace context.
  app.use(requestContext);
  app.use(requestMetrics);
  // Without upgrade-insecure-requests (helmet's default): over plain HTTP at a host other than
  // localhost it made browsers fetch /docs' scripts and styles over https, and the page stayed blank.
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  if (config.api.corsOrigins.length) {
    app.use(
      cors({
        origin: config.api.corsOrigins.includes('*') ? '*' : config.api.corsOrigins,
        allowedHeaders: ['Authorization', 'X-API-Key', 'Content-Type', 'Last-Event-ID', 'X-Request-Id', 'traceparent'],
        exposedHeaders: EXPOSED_HEADERS,
        maxAge: 600,
      }),
    );
  }
  // Both default limiters count in process far from the limit and in Redis near it
  // (core/rate-limit-batched.ts): no Redis round trip for most requests.
  const addressLimiter =
    deps.addressLimiter ??
    new BatchedRateLimiter(
      new RedisRateLimiter(deps.redis, {
        points: config.limits.apiAddressRatePerMin,
        windowS: 60,
        keyPrefix: redisKeys(config.topicPrefix).rate.apiAddress,
        log: deps.log,
      }),
    );
  app.use(rateLimitPerAddress(addressLimiter, config.limits.trustProxyHops));
  const streams =
    deps.streams ??
    new StreamLimiter({
      perKey: config.limits.streamsPerKey,
      max: config.limits.streamsMax,
      isActive: (keyIds) => activeApiKeys(deps.pool, keyIds),
      log: deps.log,
    });
  const uiSessions =
    deps.uiSessions ?? new UiSessions(deps.pool, { secret: config.ui.sessionSecret, ttlS: config.ui.sessionTtlS });
  // One feed reader for both live routes (per session and per tenant) unless the process gave one.
  const live = { ...deps.live, hub: deps.live?.hub ?? new FeedHub(deps.redis, deps.log) };
  deps = { ...deps, streams, uiSessions, live };
  for (const r of publicRouters) app.use(r(deps));

  const rateLimiter =
    deps.rateLimiter ??
    new BatchedRateLimiter(
      new RedisRateLimiter(deps.redis, {
        points: config.api.ratePerMin,
        windowS: 60,
        keyPrefix: redisKeys(config.topicPrefix).rate.apiKey,
        log: deps.log,
      }),
    );
  app.use(
    '/v1',
    authenticate(deps.verifier, uiSessions),
    rateLimitPerKey(rateLimiter),
    ...jsonBody({ maxBytes: config.api.maxBodyBytes, methods: WITH_BODY }),
  );
  for (const r of v1Routers) app.use(r(deps));

  // The document is generated from the routes registered above (api/openapi.ts).
  app.get('/docs/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(undefined, { swaggerOptions: { url: '/docs/openapi.json' } }));

  app.use((req) => {
    throw notFound(`route ${req.method} ${req.path}`);
  });
  app.use(problemHandler(deps.log, { problemOf: apiProblemOf }));
  return app;
}

/**
 * Methods whose body is read: a body of another type than JSON is 415 before anything is read; the
 * body is bounded (413), must be UTF-8 and valid JSON (400). Bodies of GET requests are ignored.
 */
const WITH_BODY: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
