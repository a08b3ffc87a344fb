import fc from 'fast-check';
import type { Producer } from 'kafkajs';
import { apiFixture, type ApiFixture } from '../test/support/api';
import { kafkaFixture, type KafkaFixture } from '../test/support/stack';

/**
 * Every route of the OpenAPI document under thousands of generated hostile requests (issue 11,
 * fast-check), against real PostgreSQL, Redis and Kafka: path parameters and query values that are
 * another tenant's ids, control characters, huge numbers, formula text, dates a century off; bodies
 * of any JSON. The API must answer each with a 2xx/3xx or a 4xx problem+json, never a 5xx, never
 * tenant A's data to tenant B's key, and a refused command (4xx) appends nothing to Kafka.
 */
/** Generated requests per route (VIGIL_PROPERTY_RUNS overrides). */
const RUNS_PER_ROUTE = Number(process.env.VIGIL_PROPERTY_RUNS ?? 2000);
const A = 'fleet-a';
const B = 'fleet-b';
const A_SESSION = 'sess-a-secret-0001';
const A_ALERT = 'alert-a-secret-0001';

describe('query API under generated hostile requests (real PostgreSQL, Redis, Kafka)', () => {
  let fx: ApiFixture;
  let kfx: KafkaFixture;
  let producer: Producer;
  let url: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    fx = await apiFixture({ VIGIL_API_RATE_PER_MIN: '10000000', VIGIL_API_ADDRESS_RATE_PER_MIN: '10000000' });
    kfx = await kafkaFixture(fx.config);
    producer = kfx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    url = await fx.start({ producer, serde: kfx.serde });
    const now = Date.now();
    await fx.pool.query(
      `INSERT INTO sessions (session_id, tenant_id, driver_id, vehicle_id, status, started_at)
       VALUES ($1, $2, 'drv-a-secret', 'veh-a-secret', 'active', $3)`,
      [A_SESSION, A, new Date(now - 600_000)],
    );
    await fx.pool.query(
      `INSERT INTO alerts (alert_id, tenant_id, session_id, reason, level, status, raised_at, last_event_ts, acknowledged_by)
       VALUES ($1, $2, $3, 'microsleep', 2, 'active', $4, $4, 'drv-a-secret')`,
      [A_ALERT, A, A_SESSION, new Date(now - 300_000)],
    );
    keys.reader = await fx.key(B, 'reader');
    keys.admin = await fx.key(B, 'admin');
    keys.device = await fx.key(B, 'device');
  });
  afterAll(async () => {
    await producer?.disconnect();
    await kfx?.close();
    await fx?.close();
  });

  const commandsEnd = async () =>
    (await kfx.admin.fetchTopicOffsets(kfx.topics.commands)).reduce((n, p) => n + Number(p.high), 0);

  it('answers thousands of generated requests on every route with a non-5xx, problem+json on 4xx, no other tenant data, and appends no command when it refuses', async () => {
    const doc = (await (await fetch(`${url}/docs/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        path,
        method: method.toUpperCase(),
        query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
      })),
    );
    expect(routes.length).toBeGreaterThan(10);
    const hostile = fc.oneof(
      fc.constantFrom(A_SESSION, A_ALERT, A, '', ' ', '\u0000', '%00', '..', '../..', '=HYPERLINK("x")'),
      fc.constantFrom('1e308', '-1', '99999999999999999999', 'NaN', 'Infinity', '0x10', 'null', 'true', '[]', '{}'),
      fc.constantFrom('1900-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '2026-13-45', '8.7e15', 'now'),
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.string({ minLength: 500, maxLength: 600 }),
      fc.integer().map(String),
      fc.double().map(String),
    );
    const request = fc.record({
      params: fc.array(hostile, { minLength: 4, maxLength: 4 }),
      query: fc.array(fc.tuple(fc.nat(20), hostile), { maxLength: 4 }),
      key: fc.constantFrom('reader', 'admin', 'device', 'none', 'garbage'),
      body: fc.option(fc.json({ maxDepth: 2 }), { freq: 2 }),
    });
    const statuses = new Map<number, number>();
    for (const route of routes) {
      await fc.assert(
        fc.asyncProperty(request, async ({ params, query, key, body }) => {
          let i = 0;
          const path = route.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(params[i++ % params.length]!));
          const qs = new URLSearchParams(
            query.map(([n, v]): [string, string] => [route.query[n % Math.max(1, route.query.length)] ?? `x${n}`, v]),
          );
          const headers: Record<string, string> = { accept: '*/*' };
          if (key === 'garbage') headers.authorization = 'Bearer vgl_nope_nope';
          else if (key !== 'none') headers.authorization = `Bearer ${keys[key]}`;
          if (body !== null) headers['content-type'] = 'application/json';
          const before = route.method === 'POST' ? await commandsEnd() : 0;
          const abort = new AbortController();
          const res = await fetch(`${url}${path}${qs.size ? `?${qs}` : ''}`, {
            method: route.method,
            headers,
            body: route.method === 'GET' || body === null ? undefined : body,
            signal: abort.signal,
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const type = res.headers.get('content-type') ?? '';
          // Streams (SSE, playback) are not read to their end: headers are what is checked.
          const text = type.includes('text/event-stream') || type.includes('ndjson') ? '' : await res.text();
          abort.abort();
          if (res.status >= 500) throw new Error(`${route.method} ${path}?${qs} → ${res.status} ${text.slice(0, 300)}`);
          if (res.status >= 400) {
            expect(type).toMatch(/application\/problem\+json/);
            if (route.method === 'POST') expect(await commandsEnd()).toBe(before);
          }
          // Tenant A's data that B never sends (an echo of B's own input would not be a leak).
          expect(text).not.toMatch(/drv-a-secret|veh-a-secret/);
        }),
        { numRuns: RUNS_PER_ROUTE },
      );
    }
    // The generated requests reached past authentication and validation, not only 401s.
    expect([...statuses.keys()].some((s) => s === 200)).toBe(true);
    expect([...statuses.keys()].some((s) => s === 400)).toBe(true);
  }, 900_000);
});
