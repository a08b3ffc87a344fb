import { createRedis } from '../core/redis';
import { RedisRateLimiter } from '../core/rate-limit';
import { testLogger } from '../test/support/env';
import { apiFixture, type ApiFixture } from '../test/support/api';
import { openApiPath } from './openapi';
import { createApp } from './app';
import { ApiKeyVerifier } from '../core/api-keys';
import { topicNames } from '../schemas/catalogue';

/**
 * The API's foundation against real PostgreSQL and Redis: authentication and roles, the OpenAPI
 * document, body rules, rate limits, security headers and CORS.
 */
interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
}

describe('query API foundation (auth, OpenAPI, bodies, rate limits, headers)', () => {
  let fx: ApiFixture;
  const keys = {} as Record<'reader' | 'admin' | 'device', string>;

  beforeAll(async () => {
    fx = await apiFixture({ VIGIL_API_CORS_ORIGINS: 'https://dash.example.com', VIGIL_API_MAX_BODY_BYTES: '1024' });
    for (const role of ['reader', 'admin', 'device'] as const) keys[role] = await fx.key('fleet-a', role);
  });
  afterAll(() => fx?.close());

  const problemOf = async (res: Response) => {
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    return (await res.json()) as Problem;
  };

  describe('authentication', () => {
    it('answers 401 with WWW-Authenticate when no key is sent', async () => {
      const res = await fx.get('/v1/sessions');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="vigil"');
      expect(await problemOf(res)).toMatchObject({ status: 401, title: 'Unauthorized' });
    });

    it('answers 401 invalid_token for an unknown, malformed or wrong key', async () => {
      const [, id] = /^vgl_(\w{12})_/.exec(keys.reader)!;
      for (const key of [`vgl_${id}_${'x'.repeat(43)}`, 'hunter2', "'OR'1'='1"]) {
        const res = await fx.get('/v1/sessions', key);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="vigil", error="invalid_token"');
        expect((await problemOf(res)).detail).toBe('the API key is unknown or revoked');
      }
    });

    it('accepts the key in X-API-Key as well as Authorization: Bearer', async () => {
      expect((await fx.get('/v1/sessions', keys.reader)).status).toBe(200);
      expect((await fx.get('/v1/sessions', undefined, { 'x-api-key': keys.admin })).status).toBe(200);
    });

    it('refuses device keys on read routes with 403', async () => {
      const res = await fx.get('/v1/sessions', keys.device);
      expect(res.status).toBe(403);
      expect((await problemOf(res)).detail).toBe('this needs a key of role reader or admin; this key has role device');
    });

    it('serves health and docs without a key', async () => {
      expect((await fx.get('/health/live')).status).toBe(200);
      expect((await fx.get('/docs/openapi.json')).status).toBe(200);
      const ui = await fetch(`${fx.url}/docs/`);
      expect(ui.status).toBe(200);
      expect(await ui.text()).toContain('swagger-ui');
    });
  });

  describe('OpenAPI', () => {
    it('documents every Express route, with its parameters and the key schemes', async () => {
      const doc = (await (await fx.get('/docs/openapi.json')).json()) as {
        openapi: string;
        paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; security?: unknown[] }>>;
        components: { securitySchemes: Record<string, unknown> };
      };
      expect(doc.openapi).toBe('3.0.3');
      const app = createApp({
        config: fx.config,
        pool: fx.pool,
        redis: fx.redis,
        log: testLogger(),
        topics: topicNames(fx.config.topicPrefix),
        verifier: new ApiKeyVerifier(fx.pool),
        checks: {},
      });
      const routes = expressRoutes(app).filter((r) => r.path.startsWith('/v1/'));
      expect(routes.length).toBeGreaterThanOrEqual(2);
      for (const r of routes) {
        const op = doc.paths[openApiPath(r.path)]?.[r.method];
        expect({ route: `${r.method} ${r.path}`, documented: !!op }).toEqual({
          route: `${r.method} ${r.path}`,
          documented: true,
        });
        expect(op!.security).toEqual([{ bearerAuth: [] }, { apiKeyHeader: [] }]);
      }
      expect(doc.paths['/v1/sessions/{id}']!.get!.parameters).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'id', in: 'path' })]),
      );
      expect(doc.paths['/v1/sessions']!.get!.parameters!.map((p) => p.name)).toEqual(
        expect.arrayContaining(['status', 'driver', 'level', 'from', 'to', 'limit', 'cursor']),
      );
      expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKeyHeader', 'bearerAuth']);
    });
  });

  describe('request bodies', () => {
    const post = (body: string | Buffer, contentType: string | undefined) =>
      fetch(`${fx.url}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.reader}`, ...(contentType ? { 'content-type': contentType } : {}) },
        body,
      });

    it('answers 415 for a body that is not JSON', async () => {
      const res = await post('a=1', 'application/x-www-form-urlencoded');
      expect(res.status).toBe(415);
      expect((await problemOf(res)).detail).toBe(
        'Content-Type "application/x-www-form-urlencoded" is not supported: send application/json',
      );
      expect((await post('{}', 'text/plain')).status).toBe(415);
    });

    it('answers 413 for a body over VIGIL_API_MAX_BODY_BYTES', async () => {
      const res = await post(JSON.stringify({ x: 'y'.repeat(2_000) }), 'application/json');
      expect(res.status).toBe(413);
      expect(await problemOf(res)).toMatchObject({
        title: 'Content Too Large',
        detail: 'the body is larger than 1024 bytes',
      });
    });

    it('answers 400 naming the body for malformed JSON and for invalid UTF-8', async () => {
      const bad = await post('{"a": ', 'application/json');
      expect(bad.status).toBe(400);
      expect((await problemOf(bad)).errors).toEqual([{ field: '(body)', message: expect.any(String) }]);
      const latin1 = await post(
        Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]),
        'application/json',
      );
      expect(latin1.status).toBe(400);
      expect((await problemOf(latin1)).errors).toEqual([{ field: '(body)', message: 'is not valid UTF-8' }]);
    });

    it('answers an unknown route with a 404 problem and no stack trace', async () => {
      const res = await post('{}', 'application/json');
      expect(res.status).toBe(404);
      const p = await problemOf(res);
      expect(p).toEqual({
        type: 'https://vigil.dev/problems/not-found',
        title: 'Not found',
        status: 404,
        detail: 'route POST /v1/sessions not found',
      });
    });
  });

  describe('rate limits', () => {
    it('counts requests per key in Redis with RateLimit headers, then 429 with Retry-After', async () => {
      const url = await fx.start({
        rateLimiter: new RedisRateLimiter(fx.redis, {
          points: 3,
          windowS: 60,
          keyPrefix: `${fx.config.topicPrefix}:api:rate:test`,
          log: testLogger(),
        }),
      });
      const get = (key: string) => fetch(`${url}/v1/sessions`, { headers: { authorization: `Bearer ${key}` } });
      const remaining: (string | null)[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await get(keys.reader);
        expect(res.status).toBe(200);
        expect(res.headers.get('ratelimit-limit')).toBe('3');
        expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);
        remaining.push(res.headers.get('ratelimit-remaining'));
      }
      expect(remaining).toEqual(['2', '1', '0']);
      const refused = await get(keys.reader);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      expect((await problemOf(refused)).title).toBe('Too Many Requests');
      // Another key has its own budget.
      expect((await get(keys.admin)).status).toBe(200);
    });

    it('allows requests (no RateLimit headers) when Redis is down', async () => {
      const dead = createRedis('redis://127.0.0.1:1/0');
      dead.on('error', () => {});
      try {
        const url = await fx.start({ redis: dead });
        const res = await fetch(`${url}/v1/sessions`, { headers: { authorization: `Bearer ${keys.reader}` } });
        expect(res.status).toBe(200);
        expect(res.headers.get('ratelimit-limit')).toBeNull();
      } finally {
        dead.disconnect();
      }
    });
  });

  describe('security headers and CORS', () => {
    it('sends helmet headers, X-Request-Id, and no X-Powered-By', async () => {
      const res = await fx.get('/v1/sessions', keys.reader);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('x-request-id')).toMatch(/^[\w-]{36}$/);
    });

    it('allows the configured origin only, exposing the rate headers', async () => {
      const ok = await fx.get('/v1/sessions', keys.reader, { origin: 'https://dash.example.com' });
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://dash.example.com');
      expect(ok.headers.get('access-control-expose-headers')).toContain('RateLimit-Remaining');
      const other = await fx.get('/v1/sessions', keys.reader, { origin: 'https://evil.example.com' });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await fetch(`${fx.url}/v1/sessions`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://dash.example.com',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
    });
  });
});

/** Every method + path registered on an Express 5 app, through mounted routers. */
function expressRoutes(app: unknown): { method: string; path: string }[] {
  interface Layer {
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  }
  const out: { method: string; path: string }[] = [];
  const walk = (stack: Layer[]) => {
    for (const l of stack) {
      if (l.route) for (const m of Object.keys(l.route.methods)) out.push({ method: m, path: l.route.path });
      else if (l.handle?.stack) walk(l.handle.stack);
    }
  };
  walk((app as { router: { stack: Layer[] } }).router.stack);
  return out;
}
