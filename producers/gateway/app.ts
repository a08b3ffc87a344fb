import express, { type Express, type RequestHandler } from 'express';
import { trace } from '@opentelemetry/api';
import type { ApiKeyPrincipal } from '../../core/api-keys';
import type { VigilError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { TopicKey, ValueOf } from '../../schemas/catalogue';
import {
  badRequest,
  forbidden,
  problem,
  problemHandler,
  tooManyRequests,
  unauthorized,
  type Problem,
} from '../../core/http/problem';
import { jsonBody } from '../../core/http/body';
import { checkBatch, isStream, streams, type Validate } from './batch';
import type { Claim } from '../../core/session-owners';
import { DEFAULT_TS_WINDOW, type TsWindow } from '../../schemas/rules';
import type { RateLimiter } from './rate-limit';
import { retryAfterS, setRateHeaders } from '../../core/http/rate-limit';
import { healthRouter, type DependencyCheck } from '../../core/http/health';
import { requestContext } from '../../core/http/request-context';
import { gatewayOpenApi } from './openapi';
import { ingestMetrics, reasonOfEventErrors, refused } from './metrics';

/**
 * The HTTP ingest gateway (no listening socket: server.ts listens, tests drive it in process).
 *
 * `POST /v1/ingest/<stream>` (stream: sessions | eeg | face | vehicle | game), body: a JSON array of
 * events of that stream's topic (the JSON shape of schemas/types.ts: multi-kind topics carry the kind
 * in `event.type`), key of role `device` in `Authorization: Bearer <key>` or `X-API-Key`.
 *
 * Checks, in order, each refusing the whole request (nothing of it is published):
 *   404 unknown stream · 401 missing/unknown/revoked key · 403 key of another role ·
 *   415 not JSON · 413 body over VIGIL_GATEWAY_MAX_BODY_BYTES · 400 bad JSON, not an array, empty ·
 *   413 more than VIGIL_GATEWAY_MAX_EVENTS events · 429 over VIGIL_GATEWAY_RATE_PER_SEC events/s for
 *   the key (Retry-After) · 403 an event names another tenant · 400 events break the schema or the
 *   rule table (schemas/rules.ts) or have a `ts` outside the window around the gateway's clock, each
 *   as `{index, field, message, rule?}` · 403 an event names a session owned by another tenant
 *   (`field: session_id`; the first tenant to use a session id owns it, core/session-owners.ts) ·
 *   503 Kafka, the registry or PostgreSQL unavailable (Retry-After).
 * `202 {accepted: n}` only once Kafka acknowledged every event (acks=all).
 *
 * Every response carries `X-Request-Id` and the `traceparent` of its server span; the Kafka records
 * carry the same trace (the publisher injects the active context), so a device's trace continues
 * through the gateway into the processors.
 */
export interface GatewayDeps {
  /** Publisher.publish: resolves once Kafka acknowledged every event; throws KAFKA_UNAVAILABLE. */
  publish<K extends TopicKey>(key: K, events: ValueOf<K>[]): Promise<void>;
  /** AvroSerde.validate: `path: rule` problems of one value. */
  validate: Validate;
  verifyKey(key: string): Promise<ApiKeyPrincipal | null>;
  rateLimiter: RateLimiter;
  limits: { maxBodyBytes: number; maxEvents: number };
  /** Dependency checks for /health/ready, by name. */
  checks: Record<string, DependencyCheck>;
  log: Logger;
  /** False while the writer schemas are not registered yet (ingest answers 503 meanwhile). */
  ready?: () => boolean;
  /** Requests per client address, before authentication (core/http/rate-limit.ts `rateLimitPerAddress`). */
  addressLimit?: RequestHandler;
  /** SessionOwners.claim: the owner tenant of each session id (claiming the unclaimed ones). */
  claimSessions(claims: readonly Claim[]): Promise<Map<string, string>>;
  /** Accepted window of event `ts` around the gateway's clock (default DEFAULT_TS_WINDOW). */
  tsWindow?: TsWindow;
  /** The gateway's clock (tests fix it). */
  now?: () => number;
}

/** Dependency failures: 503 even when not retriable as such (e.g. migrations not applied yet). */
const UNAVAILABLE = new Set(['KAFKA_UNAVAILABLE', 'DATABASE_UNAVAILABLE', 'SCHEMA_REGISTRY_UNAVAILABLE']);
/** Seconds a client should wait before retrying after a 503. */
const RETRY_AFTER_UNAVAILABLE_S = 5;

const unavailable = (detail: string) => problem(503, 'unavailable', 'Service Unavailable', detail);

export function createGatewayApp(deps: GatewayDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext);
  app.use('/v1/ingest/:stream', ingestMetrics);
  if (deps.addressLimit) app.use(deps.addressLimit);
  app.use(healthRouter(deps.checks));
  app.get('/openapi.json', gatewayOpenApi(deps.limits));

  app.post(
    '/v1/ingest/:stream',
    (req, _res, next) => {
      const stream = String(req.params.stream);
      if (!isStream(stream)) {
        throw problem(404, 'not-found', 'Not Found', `unknown stream ${JSON.stringify(stream)}`, {
          streams: Object.keys(streams),
        });
      }
      next();
    },
    authenticate(deps),
    ...jsonBody({
      maxBytes: deps.limits.maxBodyBytes,
      whenEmpty: () => bodyProblem('is empty: send a JSON array of events'),
      strict: false,
      utf8Only: false,
    }),
    async (req, res) => {
      const key = streams[req.params.stream as keyof typeof streams];
      const principal = res.locals.principal as ApiKeyPrincipal;
      const body: unknown = req.body;
      if (!Array.isArray(body)) throw bodyProblem('must be a JSON array of events');
      if (body.length === 0) throw bodyProblem('must hold at least one event');
      if (body.length > deps.limits.maxEvents) {
        refused(res, 'too_many_events');
        throw problem(
          413,
          'too-many-events',
          'Content Too Large',
          `${body.length} events in one request; at most ${deps.limits.maxEvents} (VIGIL_GATEWAY_MAX_EVENTS)`,
          { max_events: deps.limits.maxEvents },
        );
      }
      trace.getActiveSpan()?.setAttributes({
        'vigil.stream': key,
        'vigil.events': body.length,
        'vigil.tenant_id': principal.tenantId,
        'vigil.api_key_id': principal.keyId,
      });

      const rate = await deps.rateLimiter.take(principal.keyId, body.length);
      setRateHeaders(res, rate);
      if (!rate.allowed) {
        const wait = retryAfterS(rate);
        res.setHeader('Retry-After', String(wait));
        refused(res, 'rate_limited');
        throw tooManyRequests(
          `this key may send ${rate.limit} events per second; ${body.length} more would exceed it, retry in ${wait} s`,
        );
      }

      if (deps.ready && !deps.ready()) throw unavailable('the gateway is starting: event schemas not registered yet');

      const now = deps.now?.() ?? Date.now();
      const checked = checkBatch(key, body, principal.tenantId, deps.validate, 100, {
        now,
        window: deps.tsWindow ?? DEFAULT_TS_WINDOW,
      });
      if (!checked.ok) {
        const truncated = checked.total > checked.errors.length ? `, first ${checked.errors.length} listed` : '';
        refused(res, checked.status === 403 ? 'tenant_mismatch' : reasonOfEventErrors(checked.errors));
        throw checked.status === 403
          ? problem(
              403,
              'foreign-tenant',
              'Forbidden',
              `${checked.total} events name another tenant than the API key's${truncated}; nothing was published`,
              { errors: checked.errors, total_errors: checked.total },
            )
          : problem(
              400,
              'invalid-events',
              'Invalid events',
              `${checked.total} problems in the events${truncated}; nothing was published`,
              { errors: checked.errors, total_errors: checked.total },
            );
      }

      // Session ownership: every session id of the batch must be the key's tenant's (or unclaimed,
      // and then it becomes the tenant's). One answer for the whole batch, before anything is sent.
      const owners = await deps.claimSessions(
        checked.events.map((e) => ({ session_id: e.session_id, tenant_id: principal.tenantId })),
      );
      const foreign = checked.events
        .map((e, index) => ({ index, session: e.session_id, owner: owners.get(e.session_id) }))
        .filter((x) => x.owner !== principal.tenantId);
      if (foreign.length) {
        refused(res, 'foreign_session');
        const errors = foreign.slice(0, 100).map((x) => ({
          index: x.index,
          field: 'session_id',
          message: `session ${JSON.stringify(x.session)} belongs to another tenant`,
        }));
        throw problem(
          403,
          'foreign-session',
          'Forbidden',
          `${foreign.length} events name a session of another tenant; nothing was published`,
          { errors, total_errors: foreign.length },
        );
      }

      await deps.publish(key, checked.events);
      deps.log.debug({ stream: key, events: checked.events.length, tenant: principal.tenantId }, 'ingested');
      res.status(202).json({ accepted: checked.events.length });
    },
  );

  app.use((req) => {
    throw problem(404, 'not-found', 'Not Found', `route ${req.method} ${req.path} not found`);
  });
  app.use(
    problemHandler(deps.log, {
      problemOf: gatewayProblemOf,
      bodyTooLargeHint: ' (VIGIL_GATEWAY_MAX_BODY_BYTES); send fewer events per request',
      describeUnparsable: (message) => `is not valid JSON: ${message}`,
      retryAfterUnavailableS: RETRY_AFTER_UNAVAILABLE_S,
    }),
  );
  return app;
}

/** The presented key: `Authorization: Bearer <key>`, else `X-API-Key`. */
function presentedKey(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  return m?.[1] ?? (apiKey?.trim() || undefined);
}

function authenticate(deps: GatewayDeps): RequestHandler {
  return async (req, res, next) => {
    const key = presentedKey(req.get('authorization'), req.get('x-api-key'));
    if (!key) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="vigil-ingest"');
      throw unauthorized('send a device API key: Authorization: Bearer <key>');
    }
    const principal = await deps.verifyKey(key);
    if (!principal) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="vigil-ingest", error="invalid_token"');
      throw unauthorized('the API key is unknown or revoked');
    }
    if (principal.role !== 'device') {
      throw forbidden(`ingest needs a key of role device; this key has role ${principal.role}`);
    }
    res.locals.principal = principal;
    next();
  };
}

/** 400 about the body as a whole. */
const bodyProblem = (message: string) => badRequest([{ field: '(body)', message }]);

/** Dependency failures (retriable, or one of UNAVAILABLE) are 503 with Retry-After; others a bare 500. */
function gatewayProblemOf(err: VigilError): Problem | undefined {
  if (!err.retriable && !UNAVAILABLE.has(err.code)) return undefined;
  return {
    type: `https://vigil.dev/problems/${err.code.toLowerCase()}`,
    title: 'Service Unavailable',
    status: 503,
    detail: `${err.code}: a dependency is unavailable; retry the request later (event_id makes a repeat harmless)`,
  };
}
