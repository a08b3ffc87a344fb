import fc from 'fast-check';
import { testConfig } from '../../test/support/env';
import { gatewayFixture, type GatewayFixture } from '../../test/support/gateway';
import { createApiKey } from '../../core/api-keys';
import { sessionEvents } from '../simulator/session';
import type { TopicKey } from '../../schemas/catalogue';
import { streams, type Stream } from './batch';

/**
 * The gateway as a trust boundary (issue 11), against real Kafka, PostgreSQL and Redis: another
 * tenant's session ids, clocks far off, values outside their physical range and control characters
 * are refused with a problem naming the field, and a refused request publishes nothing. The last
 * part throws thousands of generated hostile requests at every stream (fast-check).
 */
/** Generated requests per stream (VIGIL_PROPERTY_RUNS overrides). */
const RUNS_PER_ROUTE = Number(process.env.VIGIL_PROPERTY_RUNS ?? 2000);
const config = testConfig({ VIGIL_GATEWAY_RATE_PER_SEC: '100000000' });
const NOW = Date.now();
const plan = (tenantId: string, index: number) => ({
  seed: 31,
  index,
  tenantId,
  startTs: NOW - 150_000,
  durationMs: 120_000,
});
const sample = (tenantId: string, index: number) => [...sessionEvents({ ...plan(tenantId, index), profile: 'alert' })];
const firstOf = (events: ReturnType<typeof sample>, topic: TopicKey) =>
  events.find((e) => e.topic === topic)!.event as unknown as Record<string, unknown>;

interface Body {
  status?: number;
  errors?: { index?: number; field: string; message: string; rule?: string }[];
  accepted?: number;
}

describe('ingest gateway trust boundary (real Kafka, PostgreSQL, Redis)', () => {
  let fx: GatewayFixture;
  let url: string;
  const keys = { a: '', b: '' };
  /** Events published through the gateway, counted per call (the real publisher does the work). */
  let published = 0;

  beforeAll(async () => {
    fx = await gatewayFixture(config, { keyCacheTtlMs: 60_000 });
    keys.a = (await createApiKey(fx.pool, { tenantId: 'fleet-a', role: 'device' })).key;
    keys.b = (await createApiKey(fx.pool, { tenantId: 'fleet-b', role: 'device' })).key;
    url = await fx.start({
      publish: async (key, events) => {
        await fx.publisher.publish(key, events);
        published += events.length;
      },
      tsWindow: config.tsWindow,
      checks: {},
    });
  });
  afterAll(() => fx?.close());

  const post = async (stream: Stream, body: unknown, key = keys.b) => {
    const res = await fetch(`${url}/v1/ingest/${stream}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Body };
  };
  const endOf = async (key: TopicKey) =>
    (await fx.admin.fetchTopicOffsets(fx.topics[key])).reduce((n, p) => n + Number(p.high), 0);

  it("refuses with 403 naming session_id a frame of tenant B for tenant A's session, and publishes nothing", async () => {
    const a = sample('fleet-a', 0);
    const started = await post('sessions', [firstOf(a, 'sessions')], keys.a);
    expect(started.status).toBe(202);
    const frame = { ...firstOf(a, 'face'), tenant_id: 'fleet-b', eye_closure: 1 };
    const before = await endOf('face');
    const r = await post('face', [frame], keys.b);
    expect(r.status).toBe(403);
    expect(r.type).toMatch(/application\/problem\+json/);
    expect(r.body.errors).toEqual([
      { index: 0, field: 'session_id', message: expect.stringMatching(/another tenant/) },
    ]);
    expect(await endOf('face')).toBe(before);
    // The owner still writes to its session.
    expect((await post('face', [firstOf(a, 'face')], keys.a)).status).toBe(202);
  });

  it('refuses a ts a year ahead or a year behind the gateway clock with 400 naming ts', async () => {
    const b = sample('fleet-b', 1);
    const year = 365 * 24 * 3_600_000;
    for (const [shift, rule] of [
      [year, 'ts_ahead'],
      [-year, 'ts_too_old'],
    ] as const) {
      const frame = { ...firstOf(b, 'face'), ts: NOW + shift };
      const r = await post('face', [frame]);
      expect({ status: r.status, errors: r.body.errors }).toEqual({
        status: 400,
        errors: [{ index: 0, field: 'ts', rule, message: expect.any(String) }],
      });
    }
  });

  it.each([
    ['face', 'eye_closure', 5.0, 'fraction'],
    ['face', 'eye_closure', -1, 'fraction'],
    ['face', 'ts', 0, 'timestamp'],
    ['face', 'ts', 8.7e15, 'timestamp'],
    ['face', 'seq', -1, 'seq'],
    ['face', 'session_id', 'x', 'session_id'],
    ['vehicle', 'lane_offset_m', 1e308, 'lane_offset'],
    ['vehicle', 'lane_offset_m', -1e308, 'lane_offset'],
    ['vehicle', 'device_id', 'cam\u0000era', 'text'],
    ['vehicle', 'speed_kmh', 9000, 'speed'],
  ] as const)('refuses %s.%s = %p with 400 naming the field and the rule %s', async (stream, field, value, rule) => {
    const b = sample('fleet-b', 2);
    const event = { ...firstOf(b, stream), [field]: value };
    const before = await endOf(stream);
    const r = await post(stream, [firstOf(b, stream), event]);
    expect(r.status).toBe(400);
    expect(r.body.errors).toContainEqual(expect.objectContaining({ index: 1, field }));
    if (field !== 'ts' || value !== 8.7e15)
      expect(r.body.errors).toContainEqual(expect.objectContaining({ index: 1, field, rule }));
    expect(await endOf(stream)).toBe(before);
  });

  it('answers thousands of generated hostile requests per stream with 202 or a 4xx problem, never a 5xx, and a refused request publishes nothing', async () => {
    // Session ids derive from (seed, index) only: B's and A's sessions need indexes of their own.
    const b = sample('fleet-b', 4);
    const a = sample('fleet-a', 3);
    // Tenant A claims its session first, so B naming it is a cross-tenant write.
    expect((await post('sessions', [firstOf(a, 'sessions')], keys.a)).status).toBe(202);
    const valid = Object.fromEntries(
      (Object.keys(streams) as Stream[]).map((s) => [s, firstOf(b, streams[s])]),
    ) as Record<Stream, Record<string, unknown>>;
    const foreignSession = firstOf(a, 'face').session_id as string;
    const hostile = fc.oneof(
      fc.constant(null),
      fc.constant(''),
      fc.constant('x'),
      fc.constant('\u0000'),
      fc.constant('=cmd|calc'),
      fc.constant(foreignSession),
      fc.constant('fleet-a'),
      fc.constant(8.7e15),
      fc.constant(-1),
      fc.constant(1e308),
      fc.constant(Number.MAX_SAFE_INTEGER + 2),
      fc.constant(NOW + 365 * 24 * 3_600_000),
      fc.constant(NOW - 365 * 24 * 3_600_000),
      fc.double(),
      fc.integer(),
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.string({ minLength: 300, maxLength: 400 }),
      fc.boolean(),
      fc.array(fc.integer(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
    );
    const request = fc.record({
      mutations: fc.array(fc.tuple(fc.string({ maxLength: 16 }), hostile, fc.nat(20)), { maxLength: 4 }),
      count: fc.integer({ min: 1, max: 3 }),
      raw: fc.option(fc.oneof(fc.json(), fc.string({ maxLength: 50 })), { freq: 10 }),
    });
    let accepted = 0;
    let refused = 0;
    const before = await Promise.all((Object.values(streams) as TopicKey[]).map(endOf));
    for (const stream of Object.keys(streams) as Stream[]) {
      await fc.assert(
        fc.asyncProperty(request, async ({ mutations, count, raw }) => {
          const fields = Object.keys(valid[stream]);
          const events: Record<string, unknown>[] = Array.from({ length: count }, () => ({
            ...valid[stream],
            event_id: crypto.randomUUID(),
          }));
          for (const [name, value, pick] of mutations) {
            // Half the mutations hit a real field of the event, the others add odd ones.
            const field = pick % 2 === 0 ? fields[pick % fields.length]! : name;
            events[pick % events.length]![field] = value;
          }
          const sentBefore = published;
          const r = await post(stream, raw ?? events);
          if (r.status >= 500) throw new Error(`5xx ${r.status}: ${JSON.stringify(r.body)}`);
          if (r.status === 202) {
            accepted += r.body.accepted!;
            expect(published - sentBefore).toBe(r.body.accepted);
          } else {
            refused += 1;
            expect(r.status).toBeGreaterThanOrEqual(400);
            expect(r.type).toMatch(/application\/problem\+json/);
            expect(published).toBe(sentBefore);
          }
        }),
        { numRuns: RUNS_PER_ROUTE },
      );
    }
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
    // Kafka holds exactly what was accepted: the refused requests left nothing behind.
    const after = await Promise.all((Object.values(streams) as TopicKey[]).map(endOf));
    expect(after.reduce((x, y) => x + y, 0) - before.reduce((x, y) => x + y, 0)).toBe(accepted);
  }, 600_000);
});
