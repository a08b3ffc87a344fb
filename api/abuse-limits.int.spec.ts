import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Express, type RequestHandler } from 'express';
import { apiFixture, type ApiFixture } from '../test/support/api';
import { openSse, type SseClient } from '../test/support/sse';
import { testLogger, uniqueName } from '../test/support/env';
import { activeApiKeys, revokeApiKey } from '../core/api-keys';
import { RedisRateLimiter } from '../core/rate-limit';
import { createGatewayApp, type GatewayDeps } from '../producers/gateway/app';
import { FeedHub } from './feed-hub';
import { rateLimitPerAddress } from '../core/http/rate-limit';
import { StreamLimiter } from './streams';
import { problemHandler } from '../core/http/problem';

/**
 * Abuse limits against real PostgreSQL and Redis: a per-client-address limit before authentication
 * (API and gateway), caps on open streams per key and per process, a revoked key's open streams
 * ended by the periodic re-check, and spreadsheet formulas escaped in CSV exports.
 */
describe('abuse limits (real PostgreSQL, Redis)', () => {
  let fx: ApiFixture;
  let hub: FeedHub;
  const clients: SseClient[] = [];
  const keys = {} as Record<'a' | 'a2' | 'b', string>;
  const limiters: StreamLimiter[] = [];
  const log = testLogger();

  beforeAll(async () => {
    fx = await apiFixture();
    keys.a = await fx.key('fleet-a', 'reader');
    keys.a2 = await fx.key('fleet-a', 'reader');
    keys.b = await fx.key('fleet-b', 'reader');
    await fx.pool.query(
      `INSERT INTO sessions (session_id, tenant_id, status) VALUES ('s-live', 'fleet-a', 'active'), ('s-live-b', 'fleet-b', 'active')`,
    );
    hub = new FeedHub(fx.redis, log, { blockMs: 300, count: 100 });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    for (const l of limiters.splice(0)) l.stop();
  });
  afterAll(async () => {
    await hub?.close();
    await fx?.close();
  });

  const addressLimiter = (points: number) =>
    new RedisRateLimiter(fx.redis, {
      points,
      windowS: 60,
      keyPrefix: uniqueName(`${fx.config.topicPrefix}:addr`),
      log,
    });
  const streamLimiter = (perKey: number, max: number, recheckMs = 200) => {
    const l = new StreamLimiter({ perKey, max, recheckMs, isActive: (ids) => activeApiKeys(fx.pool, ids), log });
    limiters.push(l);
    return l;
  };
  const live = async (url: string, key: string, session = 's-live') => {
    const c = await openSse(`${url}/v1/sessions/${session}/live`, { authorization: `Bearer ${key}` });
    clients.push(c);
    return c;
  };

  it('limits requests per client address before authentication: 429 problem+json with Retry-After', async () => {
    const url = await fx.start({ addressLimiter: addressLimiter(5) });
    const made = `vgl_${'A'.repeat(12)}_${'a'.repeat(43)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await fetch(`${url}/v1/sessions`, { headers: { authorization: `Bearer ${made}` } })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    // The sixth is refused before its key is looked at, whatever key it carries, even a valid one.
    const refused = await fetch(`${url}/v1/sessions`, { headers: { authorization: `Bearer ${keys.a}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(await refused.json()).toMatchObject({
      status: 429,
      title: 'Too Many Requests',
      detail: expect.stringMatching(/^this address may make 5 requests per 60 s; retry in \d+ s$/),
    });
    expect((await fetch(`${url}/health/ready`)).status).toBe(429);
  });

  it('counts the address the trusted proxy saw (X-Forwarded-For) with VIGIL_TRUST_PROXY_HOPS=1', async () => {
    const limiter = addressLimiter(2);
    const url = await fx.start({ addressLimiter: limiter });
    // Without trusted hops the header is ignored: every request is 127.0.0.1's.
    const trusting = await startPlain(rateLimitPerAddress(addressLimiter(2), 1));
    const from = (ip: string) => fetch(`${trusting}/`, { headers: { 'x-forwarded-for': `9.9.9.9, ${ip}` } });
    expect([(await from('1.1.1.1')).status, (await from('1.1.1.1')).status]).toEqual([200, 200]);
    expect((await from('1.1.1.1')).status).toBe(429);
    expect((await from('2.2.2.2')).status).toBe(200);
    const spoofed = (ip: string) => fetch(`${url}/health/live`, { headers: { 'x-forwarded-for': ip } });
    expect([(await spoofed('3.3.3.3')).status, (await spoofed('4.4.4.4')).status]).toEqual([200, 200]);
    expect((await spoofed('5.5.5.5')).status).toBe(429);
  });

  it('limits the ingest gateway per client address before authentication', async () => {
    const url = await startPlainApp(
      createGatewayApp({
        verifyKey: async () => null,
        limits: { maxBodyBytes: 1024, maxEvents: 10 },
        checks: {},
        log,
        addressLimit: rateLimitPerAddress(addressLimiter(3)),
      } as unknown as GatewayDeps),
    );
    const post = () =>
      fetch(`${url}/v1/ingest/face`, {
        method: 'POST',
        headers: {
          authorization: `Bearer vgl_${'B'.repeat(12)}_${'b'.repeat(43)}`,
          'content-type': 'application/json',
        },
        body: '[]',
      });
    expect([(await post()).status, (await post()).status, (await post()).status]).toEqual([401, 401, 401]);
    const refused = await post();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('caps open streams per key (429 with Retry-After) and frees the slot when a stream closes', async () => {
    const streams = streamLimiter(2, 100);
    const url = await fx.start({ live: { hub }, streams });
    const [one, two] = [await live(url, keys.a), await live(url, keys.a)];
    expect([one.status, two.status]).toEqual([200, 200]);
    const third = await fetch(`${url}/v1/sessions/s-live/live`, { headers: { authorization: `Bearer ${keys.a}` } });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('5');
    expect(((await third.json()) as { detail: string }).detail).toBe(
      'this key has 2 streams open, at most 2 (VIGIL_API_STREAMS_PER_KEY); close one first',
    );
    // Another key of the same tenant has its own allowance.
    expect((await live(url, keys.a2)).status).toBe(200);
    one.close();
    await waitUntil(() => streams.open(keyIdOf(keys.a)) === 1);
    expect((await live(url, keys.a)).status).toBe(200);
  });

  it('caps open streams per process across keys', async () => {
    const streams = streamLimiter(10, 2);
    const url = await fx.start({ live: { hub }, streams });
    expect((await live(url, keys.a)).status).toBe(200);
    expect((await live(url, keys.b, 's-live-b')).status).toBe(200);
    const refused = await fetch(`${url}/v1/sessions/s-live/live`, { headers: { authorization: `Bearer ${keys.a2}` } });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { detail: string }).detail).toBe(
      'this server has 2 streams open, at most 2 (VIGIL_API_STREAMS_MAX); retry later',
    );
  });

  it("ends a revoked key's open streams at the next re-check, other keys' streams stay open", async () => {
    const victim = await fx.key('fleet-a', 'reader');
    const streams = streamLimiter(10, 100, 300);
    const url = await fx.start({ live: { hub }, streams });
    const doomed = await live(url, victim);
    const kept = await live(url, keys.a);
    expect([doomed.status, kept.status]).toEqual([200, 200]);
    const t0 = performance.now();
    expect(await revokeApiKey(fx.pool, keyIdOf(victim))).toBe(true);
    await doomed.ended;
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(streams.open(keyIdOf(victim))).toBe(0);
    expect(streams.open(keyIdOf(keys.a))).toBe(1);
    let keptEnded = false;
    void kept.ended.then(() => (keptEnded = true));
    await new Promise((r) => setTimeout(r, 700));
    expect(keptEnded).toBe(false);
  });

  it('re-checks open streams at least every 10 s whatever is asked, so revocation takes effect within 30 s', () => {
    const l = new StreamLimiter({ perKey: 1, max: 1, recheckMs: 60_000, isActive: async () => new Set(), log });
    expect((l as unknown as { recheckMs: number }).recheckMs).toBe(10_000);
  });

  it('escapes spreadsheet formulas in CSV exports, text cells only', async () => {
    await fx.pool.query(`INSERT INTO sessions (session_id, tenant_id, status) VALUES ('s-csv', 'fleet-a', 'ended')`);
    const at = (s: number) => new Date(Date.UTC(2026, 2, 1, 8, 0, s));
    await fx.pool.query(
      `INSERT INTO alert_events (event_id, ts, tenant_id, session_id, alert_id, type, level, reason, score, acknowledged_by) VALUES
         ($1, $2, 'fleet-a', 's-csv', 'al-csv', 'AlertAcknowledged', NULL, NULL, NULL, '=HYPERLINK("http://evil","x")'),
         ($3, $4, 'fleet-a', 's-csv', 'al-csv', 'AlertAcknowledged', NULL, NULL, NULL, '@SUM(A1)'),
         ($5, $6, 'fleet-a', 's-csv', 'al-csv', 'AlertRaised', 2, 'drowsy', -12.5, '-1+2')`,
      [randomUUID(), at(1), randomUUID(), at(2), randomUUID(), at(3)],
    );
    const res = await fx.get('/v1/sessions/s-csv/export?format=csv&stream=alerts', keys.a);
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split('\n');
    expect(lines[1]).toMatch(/,"'=HYPERLINK\(""http:\/\/evil"",""x""\)"$/);
    expect(lines[2]).toMatch(/,'@SUM\(A1\)$/);
    // A negative number stays a number; a formula starting with - does not.
    expect(lines[3]).toMatch(/,drowsy,-12\.5,,'-1\+2$/);
  });

  async function startPlain(mw: RequestHandler) {
    const app = express();
    app.use(mw);
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    app.use(problemHandler(log));
    return startPlainApp(app);
  }
});

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(
    servers.map((s) => {
      s.closeAllConnections();
      return new Promise((r) => s.close(r));
    }),
  );
});

async function startPlainApp(app: Express): Promise<string> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const keyIdOf = (key: string): string => /^vgl_(\w{12})_/.exec(key)![1]!;

async function waitUntil(cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
