import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Producer } from 'kafkajs';
import { apiFixture, type ApiFixture } from '../test/support/api';
import { kafkaFixture, readAll, type KafkaFixture } from '../test/support/stack';
import { redisKeys } from '../core/redis-keys';
import { randomUUID } from 'node:crypto';
import type { AlertEvent, Command } from '../schemas/types';
import { readModels } from '../projections/index';

const keyIdOf = (key: string): string => /^vgl_(\w{12})_/.exec(key)![1]!;

// A tracer provider (W3C propagation, async context) as the OTel SDK installs in `vigil api`, so the
// command's producer span has a context to put in the record's headers.
new NodeTracerProvider().register();

/**
 * `POST /v1/alerts/:id/ack` against real PostgreSQL, Redis, Kafka and the registry: the command
 * lands on the commands topic, Avro-encoded, keyed by session, with a traceparent header.
 */
describe('alert acknowledgement command (real Kafka, registry, PostgreSQL, Redis)', () => {
  let fx: ApiFixture;
  let kfx: KafkaFixture;
  let producer: Producer;
  let url: string;
  const keys = {} as Record<'a' | 'b' | 'device', string>;

  beforeAll(async () => {
    fx = await apiFixture();
    kfx = await kafkaFixture(fx.config);
    producer = kfx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    keys.a = await fx.key('fleet-a', 'reader');
    keys.b = await fx.key('fleet-b', 'admin');
    keys.device = await fx.key('fleet-a', 'device');
    await fx.pool.query(
      `INSERT INTO alerts (alert_id, tenant_id, session_id, level, reason, status, raised_at, last_event_ts) VALUES
         ('al-active', 'fleet-a', 'sess-1', 2, 'microsleep', 'active', now(), now()),
         ('al-acked', 'fleet-a', 'sess-1', 1, 'drowsy', 'acknowledged', now(), now()),
         ('al-cleared', 'fleet-a', 'sess-1', 1, 'drowsy', 'cleared', now(), now()),
         ('al-b', 'fleet-b', 'sess-9', 1, 'drowsy', 'active', now(), now())`,
    );
    // Known to Redis only (the Redis projection ran ahead of PostgreSQL's).
    await fx.redis.hset(redisKeys(fx.config.topicPrefix).alert('fleet-a', 'al-redis'), {
      alert_id: 'al-redis',
      tenant_id: 'fleet-a',
      session_id: 'sess-2',
      status: 'active',
    });
    url = await fx.start({ producer, serde: kfx.serde });
  });
  afterAll(async () => {
    await producer?.disconnect();
    await kfx?.close();
    await fx?.close();
  });

  const ack = (base: string, id: string, key: string, body?: unknown) =>
    fetch(`${base}/v1/alerts/${encodeURIComponent(id)}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('appends AcknowledgeAlert (Avro, key = session, traceparent) and answers 202 with the command id', async () => {
    const before = Date.now();
    const res = await ack(url, 'al-active', keys.a, { by: 'dispatcher-7', note: 'called the driver' });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { command_id: string };
    expect(body).toEqual({
      command_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      alert_id: 'al-active',
      session_id: 'sess-1',
      status: 'accepted',
    });
    const noBody = await ack(url, 'al-redis', keys.a);
    expect(noBody.status).toBe(202);
    const second = (await noBody.json()) as { command_id: string; session_id: string };
    expect(second.session_id).toBe('sess-2');

    const records = await readAll(kfx.kafka, kfx.topics.commands);
    expect(records).toHaveLength(2);
    const decoded = await Promise.all(records.map(async (r) => (await kfx.serde.decode<Command>(r.value)).value));
    const first = records.findIndex((r) => r.key?.toString() === 'sess-1');
    const cmd = decoded[first]!;
    expect(cmd).toEqual({
      event_id: body.command_id,
      tenant_id: 'fleet-a',
      session_id: 'sess-1',
      ts: expect.any(Number),
      event: {
        type: 'AcknowledgeAlert',
        alert_id: 'al-active',
        acknowledged_by: `key:${keyIdOf(keys.a)} (dispatcher-7)`,
      },
    });
    expect(cmd.ts).toBeGreaterThanOrEqual(before);
    expect(records[first]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // Without `by`, the acknowledger is the key alone.
    const other = decoded[1 - first]!;
    expect(records[1 - first]!.key?.toString()).toBe('sess-2');
    expect(other.event).toEqual({
      type: 'AcknowledgeAlert',
      alert_id: 'al-redis',
      acknowledged_by: `key:${keyIdOf(keys.a)}`,
    });
  });

  it('records the key that acknowledged: the AlertAcknowledged it becomes shows it in /v1/alerts', async () => {
    const res = await ack(url, 'al-active', keys.a, { by: 'night shift' });
    expect(res.status).toBe(202);
    const { command_id } = (await res.json()) as { command_id: string };
    const records = await readAll(kfx.kafka, kfx.topics.commands);
    const commands = await Promise.all(records.map(async (r) => (await kfx.serde.decode<Command>(r.value)).value));
    const cmd = commands.find((c) => c.event_id === command_id)!;
    const by = (cmd.event as { acknowledged_by: string }).acknowledged_by;
    expect(by).toBe(`key:${keyIdOf(keys.a)} (night shift)`);
    // The processor copies the command's acknowledged_by into AlertAcknowledged; the alerts read
    // model applies that event here.
    const acknowledged: AlertEvent = {
      event_id: randomUUID(),
      tenant_id: 'fleet-a',
      session_id: 'sess-1',
      ts: Date.now(),
      event: { type: 'AlertAcknowledged', alert_id: 'al-active', acknowledged_by: by },
    };
    for (const st of readModels.alerts!.project([{ topic: 'alerts', partition: 0, offset: '0', value: acknowledged }]))
      await fx.pool.query(st.text, st.values);
    const list = await fx.get('/v1/alerts?state=acknowledged', keys.a);
    expect(list.status).toBe(200);
    const items = ((await list.json()) as { alerts: { alert_id: string; acknowledged_by: string | null }[] }).alerts;
    expect(items.find((a) => a.alert_id === 'al-active')?.acknowledged_by).toBe(`key:${keyIdOf(keys.a)} (night shift)`);
  });

  it('accepts an acknowledged alert again, refuses a cleared one (409), another tenant’s or an unknown one (404)', async () => {
    expect((await ack(url, 'al-acked', keys.a, {})).status).toBe(202);
    const cleared = await ack(url, 'al-cleared', keys.a, {});
    expect(cleared.status).toBe(409);
    expect(cleared.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await cleared.json()) as { detail: string }).detail).toBe('alert al-cleared is already cleared');
    expect((await ack(url, 'al-b', keys.a, {})).status).toBe(404);
    expect((await ack(url, 'al-active', keys.b, {})).status).toBe(404);
    expect((await ack(url, 'no-such-alert', keys.a, {})).status).toBe(404);
  });

  it('validates the body and the role, and answers 503 where no command producer is configured', async () => {
    const control = await ack(url, 'al-active', keys.a, { by: 'a\u0000b' });
    expect(control.status).toBe(400);
    expect(((await control.json()) as { errors: unknown[] }).errors).toEqual([
      { field: 'by', message: 'must not contain control characters' },
    ]);
    const bad = await ack(url, 'al-active', keys.a, { by: 5, extra: true });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors.map((e) => e.field).sort()).toEqual([
      '(body)',
      'by',
    ]);
    expect((await ack(url, 'al-active', keys.device, {})).status).toBe(403);
    expect((await ack(url, "x' OR '1'='1", keys.a, {})).status).toBe(400);
    const noProducer = await fx.start();
    expect((await ack(noProducer, 'al-active', keys.a, {})).status).toBe(503);
  });
});
