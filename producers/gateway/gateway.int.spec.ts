import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { testConfig, testLogger } from '../../test/support/env';
import { gatewayFixture, type GatewayFixture } from '../../test/support/gateway';
import { readAll } from '../../test/support/stack';
import { createApiKey, revokeApiKey } from '../../core/api-keys';
import { createRedis } from '../../core/redis';
import { Publisher } from '../publisher';
import { sessionEvents } from '../simulator/session';
import type { EegBandPower, FaceFrame, GameEvent, SessionEvent, VehicleFrame } from '../../schemas/types';
import type { TopicKey } from '../../schemas/catalogue';
import { EventRateLimiter } from './rate-limit';

/**
 * The ingest gateway in process against the real stack: Kafka + registry (unique topic prefix),
 * a fresh PostgreSQL database for the keys, Redis for the rate counters.
 */
const MAX_EVENTS = 200;
const MAX_BODY = 64 * 1024;
const config = testConfig({
  VIGIL_GATEWAY_MAX_EVENTS: String(MAX_EVENTS),
  VIGIL_GATEWAY_MAX_BODY_BYTES: String(MAX_BODY),
});
const log = testLogger();
const TENANT = 'fleet-a';
/** Near now (whole minutes): the gateway refuses a ts more than 24 h behind its clock or 60 s ahead. */
const plan = {
  seed: 21,
  index: 0,
  tenantId: TENANT,
  startTs: Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000,
  durationMs: 60_000,
};
const simulated = [...sessionEvents({ ...plan, profile: 'alert' })];
const eeg = simulated.filter((e) => e.topic === 'eeg').map((e) => e.event as EegBandPower);
const sessions = simulated.filter((e) => e.topic === 'sessions').map((e) => e.event as SessionEvent);
/** A problem+json (or 202) body, loosely typed for assertions. */
interface Body {
  type?: string;
  status?: number;
  detail?: string;
  errors?: unknown[];
  total_errors?: number;
  streams?: string[];
  accepted?: number;
}
const bodyOf = async (res: Response) => (await res.json()) as Body;
/** What a device sends when it leaves the tenant to the key. */
const withoutTenant = <T extends { tenant_id: string }>(events: T[]) =>
  events.map(({ tenant_id: _t, ...rest }) => rest as Omit<T, 'tenant_id'>);

describe('HTTP ingest gateway (in process, real Kafka, PostgreSQL, Redis)', () => {
  let fx: GatewayFixture;
  const keys = {} as Record<'device' | 'reader' | 'revoked' | 'rate' | 'open', string>;
  let url: string;

  beforeAll(async () => {
    fx = await gatewayFixture(config);
    const { pool } = fx;
    for (const name of ['device', 'rate', 'open'] as const) {
      keys[name] = (await createApiKey(pool, { tenantId: TENANT, role: 'device', label: name })).key;
    }
    keys.reader = (await createApiKey(pool, { tenantId: TENANT, role: 'reader' })).key;
    const revoked = await createApiKey(pool, { tenantId: TENANT, role: 'device' });
    await revokeApiKey(pool, revoked.keyId);
    keys.revoked = revoked.key;
    url = await fx.start();
  });
  afterAll(() => fx?.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}, base = url) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.device}`, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const endOf = async (key: TopicKey) =>
    (await fx.admin.fetchTopicOffsets(fx.topics[key])).reduce((n, p) => n + Number(p.high), 0);
  const decodedOf = async <T>(key: TopicKey) =>
    Promise.all(
      (await readAll(fx.kafka, fx.topics[key])).map(async (r) => ({
        key: r.key!.toString(),
        value: (await fx.serde.decode<T>(r.value)).value,
      })),
    );
  /** Runs `fn` and checks that no topic of the gateway grew meanwhile. */
  const publishesNothing = async (fn: () => Promise<void>) => {
    const streams = ['sessions', 'eeg', 'face', 'vehicle', 'game'] as const;
    const before = await Promise.all(streams.map(endOf));
    await fn();
    expect(await Promise.all(streams.map(endOf))).toEqual(before);
  };

  describe('202: accepted once Kafka acknowledged', () => {
    it('publishes EEG frames that decode back equal, tenant from the key, keyed by session', async () => {
      const batch = eeg.slice(0, 50);
      const res = await post('/v1/ingest/eeg', withoutTenant(batch), { 'x-request-id': 'req-eeg-1' });
      expect(res.status).toBe(202);
      expect(await bodyOf(res)).toEqual({ accepted: 50 });
      expect(res.headers.get('x-request-id')).toBe('req-eeg-1');
      expect(res.headers.get('ratelimit-limit')).toBe(String(config.gateway.ratePerSec));
      const records = await decodedOf<EegBandPower>('eeg');
      expect(records.map((r) => r.value).sort((a, b) => a.seq - b.seq)).toEqual(batch);
      expect(new Set(records.map((r) => r.key))).toEqual(new Set([batch[0]!.session_id]));
    });

    it('accepts X-API-Key and session events of several kinds (a union topic)', async () => {
      const res = await post('/v1/ingest/sessions', sessions, { authorization: '', 'x-api-key': keys.device });
      expect(res.status).toBe(202);
      expect((await decodedOf<SessionEvent>('sessions')).map((r) => r.value)).toEqual(sessions);
    });

    it('maps each stream to its topic: face, vehicle, game', async () => {
      const base = { tenant_id: TENANT, session_id: 's-streams', device_id: 'dev-1', seq: 1, ts: plan.startTs };
      const face: FaceFrame = {
        ...base,
        event_id: randomUUID(),
        face_detected: true,
        eye_closure: 0.25,
        mouth_open: null,
        head_pitch_deg: -2.5,
        head_yaw_deg: 0,
        head_roll_deg: 1.5,
      };
      const vehicle: VehicleFrame = {
        ...base,
        event_id: randomUUID(),
        speed_kmh: 88.5,
        lane_offset_m: -0.25,
        steering_deg: 3,
      };
      const game: GameEvent = {
        ...base,
        event_id: randomUUID(),
        event: { type: 'StimulusResponse', stimulus_id: 'st-1', reaction_ms: 612 },
      };
      for (const [stream, event] of [
        ['face', face],
        ['vehicle', vehicle],
        ['game', game],
      ] as const) {
        const res = await post(`/v1/ingest/${stream}`, [event]);
        expect(res.status).toBe(202);
        expect((await decodedOf(stream)).map((r) => r.value)).toEqual([event]);
      }
    });
  });

  describe('400: the whole batch is checked before anything is sent', () => {
    it('lists each bad event by index and field, and publishes none of the batch', async () => {
      const batch: unknown[] = withoutTenant(eeg.slice(100, 105));
      batch[1] = { ...(batch[1] as object), ts: new Date(plan.startTs).toISOString() };
      batch[3] = { ...(batch[3] as object), seq: 'four', event_id: 'not-a-uuid' };
      await publishesNothing(async () => {
        const res = await post('/v1/ingest/eeg', batch);
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const body = await bodyOf(res);
        expect(body).toMatchObject({ status: 400, total_errors: 3 });
        expect(body.errors).toEqual([
          {
            index: 1,
            field: 'ts',
            message: expect.stringMatching(/^must be an integer of milliseconds since the Unix epoch.*got "2026-/),
          },
          { index: 3, field: 'seq', message: 'must be an integer, got "four"' },
          {
            index: 3,
            field: 'event_id',
            rule: 'uuid',
            message: 'must be a UUID (8-4-4-4-12 hex digits), got "not-a-uuid"',
          },
        ]);
      });
    });

    it.each([
      ['a body that is not an array', JSON.stringify({ events: [] }), /must be a JSON array/],
      ['an empty array', '[]', /at least one event/],
      ['malformed JSON', '[{"event_id": ', /not valid JSON/],
    ])('refuses %s', async (_what, body, detail) => {
      const res = await post('/v1/ingest/eeg', body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect((await bodyOf(res)).detail).toMatch(detail);
    });

    it('answers 415 to a body that is not JSON', async () => {
      const res = await post('/v1/ingest/eeg', 'seq=1', { 'content-type': 'application/x-www-form-urlencoded' });
      expect(res.status).toBe(415);
    });

    it('answers 404 naming the streams for an unknown one', async () => {
      const res = await post('/v1/ingest/scores', [{}]);
      expect(res.status).toBe(404);
      expect((await bodyOf(res)).streams).toEqual(['sessions', 'eeg', 'face', 'vehicle', 'game']);
    });
  });

  describe('401 and 403: keys and tenants', () => {
    it.each([
      ['no key', { authorization: '' }],
      ['a malformed key', { authorization: 'Bearer hunter2' }],
      ['an unknown key', { authorization: `Bearer vgl_000000000000_${'x'.repeat(43)}` }],
      ['a revoked key', { authorization: 'revoked' }],
    ])('401 for %s', async (_what, headers) => {
      const h = headers.authorization === 'revoked' ? { authorization: `Bearer ${keys.revoked}` } : headers;
      const res = await post('/v1/ingest/eeg', withoutTenant(eeg.slice(0, 1)), h);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="vigil-ingest"/);
      expect(res.headers.get('x-request-id')).toBeTruthy();
    });

    it('403 for a reader key', async () => {
      const res = await post('/v1/ingest/eeg', withoutTenant(eeg.slice(0, 1)), {
        authorization: `Bearer ${keys.reader}`,
      });
      expect(res.status).toBe(403);
      expect((await bodyOf(res)).detail).toMatch(/role device/);
    });

    it('403 for an event naming another tenant than the key; nothing of the batch is published', async () => {
      const batch = [eeg[110]!, { ...eeg[111]!, tenant_id: 'fleet-b' }];
      await publishesNothing(async () => {
        const res = await post('/v1/ingest/eeg', batch);
        expect(res.status).toBe(403);
        expect((await bodyOf(res)).errors).toEqual([
          { index: 1, field: 'tenant_id', message: expect.stringContaining('"fleet-b"') },
        ]);
      });
    });
  });

  describe('413: size limits', () => {
    it('refuses more events than VIGIL_GATEWAY_MAX_EVENTS', async () => {
      const batch = Array.from({ length: MAX_EVENTS + 1 }, () => ({ ...eeg[0]!, channels: [] }));
      await publishesNothing(async () => {
        const res = await post('/v1/ingest/eeg', batch);
        expect(res.status).toBe(413);
        expect((await bodyOf(res)).detail).toMatch(/at most 200/);
      });
    });

    it('refuses a body over VIGIL_GATEWAY_MAX_BODY_BYTES', async () => {
      const batch = withoutTenant(eeg.slice(0, 120));
      expect(JSON.stringify(batch).length).toBeGreaterThan(MAX_BODY);
      await publishesNothing(async () => {
        const res = await post('/v1/ingest/eeg', batch);
        expect(res.status).toBe(413);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      });
    });
  });

  describe('429: events per second per key, shared in Redis', () => {
    it('refuses the request that would exceed the rate, with Retry-After, and publishes nothing of it', async () => {
      const limited = await fx.start({
        rateLimiter: new EventRateLimiter(fx.redis, { eventsPerSec: 5, keyPrefix: `${config.topicPrefix}:rate5`, log }),
        limits: { maxBodyBytes: MAX_BODY, maxEvents: 5 },
      });
      const a = withoutTenant(eeg.slice(200, 205));
      const b = withoutTenant(eeg.slice(205, 210));
      const before = await endOf('eeg');
      // Both at once, so both fall in the same one-second window whatever Kafka's latency.
      const [ra, rb] = await Promise.all([
        post('/v1/ingest/eeg', a, { authorization: `Bearer ${keys.rate}` }, limited),
        post('/v1/ingest/eeg', b, { authorization: `Bearer ${keys.rate}` }, limited),
      ]);
      expect([ra.status, rb.status].sort()).toEqual([202, 429]);
      const [ok, refused] = ra.status === 202 ? [a, rb] : [b, ra];
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.headers.get('ratelimit-limit')).toBe('5');
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
      expect(Number(refused.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);
      expect((await bodyOf(refused)).status).toBe(429);

      expect((await endOf('eeg')) - before).toBe(5);
      const published = new Set((await decodedOf<EegBandPower>('eeg')).map((r) => r.value.event_id));
      expect(ok.every((e) => published.has(e.event_id))).toBe(true);
    });

    it('fails open when Redis is down: accepts, without RateLimit headers', async () => {
      const deadRedis = createRedis('redis://127.0.0.1:1/0');
      deadRedis.on('error', () => {});
      try {
        const open = await fx.start({
          rateLimiter: new EventRateLimiter(deadRedis, { eventsPerSec: 1, keyPrefix: 'dead', log }),
          limits: { maxBodyBytes: MAX_BODY, maxEvents: 1 },
        });
        const sent = eeg.slice(300, 303);
        expect(sent).toHaveLength(3);
        for (const e of sent) {
          const res = await post('/v1/ingest/eeg', withoutTenant([e]), { authorization: `Bearer ${keys.open}` }, open);
          expect(res.status).toBe(202);
          expect(res.headers.get('ratelimit-limit')).toBeNull();
        }
      } finally {
        deadRedis.disconnect();
      }
    });
  });

  describe('503 and health', () => {
    it('answers 503 with Retry-After when Kafka does not take the events', async () => {
      const dead = new Kafka({
        brokers: ['127.0.0.1:1'],
        retry: { retries: 1, initialRetryTime: 50 },
        logLevel: logLevel.NOTHING,
      });
      const deadPublisher = new Publisher(dead, fx.serde, fx.topics);
      const down = await fx.start({ publish: (key, events) => deadPublisher.publish(key, events) });
      const res = await post('/v1/ingest/eeg', withoutTenant(eeg.slice(400, 402)), {}, down);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect((await bodyOf(res)).type).toMatch(/kafka_unavailable$/);
    });

    it('answers 503 while the schemas are not registered yet', async () => {
      const starting = await fx.start({ ready: () => false });
      const res = await post('/v1/ingest/eeg', withoutTenant(eeg.slice(0, 1)), {}, starting);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
    });

    it('reports liveness, and readiness per dependency (Redis optional)', async () => {
      expect((await fetch(`${url}/health/live`)).status).toBe(200);
      const ready = await fetch(`${url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await bodyOf(ready)).toMatchObject({
        status: 'up',
        checks: { postgres: { status: 'up', required: true }, redis: { status: 'up', required: false } },
      });
      const deadRedis = createRedis('redis://127.0.0.1:1/0');
      deadRedis.on('error', () => {});
      try {
        const degraded = await fx.start({
          checks: {
            postgres: { required: true, check: () => fx.pool.query('SELECT 1') },
            redis: { required: false, check: () => deadRedis.ping() },
          },
        });
        const res = await fetch(`${degraded}/health/ready`);
        expect(res.status).toBe(200);
        expect((await bodyOf(res)).status).toBe('degraded');
      } finally {
        deadRedis.disconnect();
      }
    });
  });
});
