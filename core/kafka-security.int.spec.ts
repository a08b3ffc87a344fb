import { loadConfig, type Config } from './config';
import { createKafka, ensureTopics, type Kafka } from './kafka';
import { aclPlan, applyAcls } from './kafka-acls';
import { AvroSerde } from './serde';
import { Runtime } from './runtime';
import { PrivateKafkaCluster } from '../deploy/local/kafka-cluster';
import { topicNames, topicKeys } from '../schemas/catalogue';
import { topicPlan } from '../schemas/topics';
import { Publisher } from '../producers/publisher';
import { sessionEvents } from '../producers/simulator/session';
import { startFatigueWorker } from '../processors/worker';
import { migratedDatabase, type MigratedDatabase } from '../test/support/database';
import { eventually, testLogger, uniqueName } from '../test/support/env';
import { readAll } from '../test/support/stack';
import type { TopicKey, ValueOf } from '../schemas/catalogue';

/**
 * A private one-node Kafka with SASL_SSL (SCRAM-SHA-512), the standard authorizer and the per-role
 * ACLs of core/kafka-acls.ts (deploy/local/kafka-cluster.sh; the shared broker is not touched):
 * no credentials, no entry; a device may not write alerts; and with each role's own credentials the
 * pipeline works, from a device's events to a fatigue score.
 */
describe('Kafka with SASL_SSL and per-role ACLs', () => {
  jest.setTimeout(240_000);
  let cluster: PrivateKafkaCluster;
  let db: MigratedDatabase;
  const prefix = uniqueName('sec');
  const topics = topicNames(prefix);
  const configAs = (user?: string, extra: Record<string, string> = {}): Config =>
    loadConfig({
      ...process.env,
      VIGIL_TOPIC_PREFIX: prefix,
      VIGIL_TOPIC_PARTITIONS: '3',
      VIGIL_TOPIC_RETENTION_MS: String(24 * 3_600_000),
      VIGIL_LOG_LEVEL: 'silent',
      VIGIL_TRACING: 'off',
      ...cluster.clientEnv(user),
      ...extra,
    });
  const kafkaAs = (user?: string): Kafka => createKafka(configAs(user).kafka, testLogger(), `test-${user ?? 'anon'}`);

  beforeAll(async () => {
    cluster = await PrivateKafkaCluster.start({ nodes: 1, security: 'sasl_ssl', dir: 'spec-kafka-sasl' });
    const admin = kafkaAs('admin').admin();
    await admin.connect();
    try {
      await ensureTopics(admin, topicPlan(configAs('admin')));
      await applyAcls(admin, aclPlan(prefix));
    } finally {
      await admin.disconnect();
    }
    await new AvroSerde(configAs('admin').schemaRegistryUrl, topics).register(topicKeys);
  });
  afterAll(async () => {
    await db?.close();
    cluster?.stop();
  });

  it('refuses a client without credentials, and one with a wrong password', async () => {
    const anonymous = kafkaAs(undefined).admin({ retry: { retries: 0 } });
    // TLS alone gets the connection up, but the SASL_SSL listener answers nothing before a login:
    // the first real request (metadata) fails.
    const anonymousAsks = async () => {
      await anonymous.connect();
      try {
        return await anonymous.listTopics();
      } finally {
        await anonymous.disconnect();
      }
    };
    await expect(anonymousAsks()).rejects.toThrow(/Connection|closed|disconnected|SASL|authenticat/i);
    const wrong = createKafka(
      configAs(undefined, {
        VIGIL_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        VIGIL_KAFKA_SASL_USERNAME: 'device',
        VIGIL_KAFKA_SASL_PASSWORD: 'not-the-password',
      }).kafka,
      testLogger(),
      'test-wrong',
    ).admin({ retry: { retries: 0 } });
    await expect(wrong.connect()).rejects.toMatchObject({
      name: 'KafkaJSSASLAuthenticationError',
      message: expect.stringMatching(/SCRAM|Authentication failed/i),
    });
  });

  it('lets a device write telemetry but refuses it on the alerts and commands topics', async () => {
    const producer = kafkaAs('device').producer({ idempotent: true, retry: { retries: 1 } });
    await producer.connect();
    try {
      const record = { key: 'session-x', value: Buffer.from('x') };
      const ok = await producer.send({ topic: topics.eeg, acks: -1, messages: [record] });
      expect(ok[0]).toMatchObject({ topicName: topics.eeg, errorCode: 0 });
      for (const topic of [topics.alerts, topics.commands, topics.scores]) {
        await expect(producer.send({ topic, acks: -1, messages: [record] })).rejects.toThrow(
          /Topic authorization failed/,
        );
      }
    } finally {
      await producer.disconnect();
    }
  });

  it('runs the pipeline with each role on its own credentials: device events in, a fatigue score out', async () => {
    db = await migratedDatabase(); // only this test needs PostgreSQL (the processor's session owners)
    // The processor role as `vigil process` starts it, logged in as `processor`.
    const rt = new Runtime(configAs('processor', { VIGIL_DATABASE_URL: db.url }), 'processor');
    try {
      await startFatigueWorker(rt);
      const device = configAs('device');
      const kafka = kafkaAs('device');
      const deviceSerde = new AvroSerde(device.schemaRegistryUrl, topics);
      await deviceSerde.register(['sessions', 'eeg', 'face', 'vehicle', 'game']);
      const publisher = new Publisher(kafka, deviceSerde, topics);
      await publisher.connect();
      const startTs = Date.now() - 40_000;
      const events = [
        ...sessionEvents({ seed: 5, index: 0, tenantId: 'sec', startTs, durationMs: 20_000, profile: 'drowsy' }),
      ];
      await publisher.publish('sessions', only(events, 'sessions'));
      for (const key of ['eeg', 'face', 'vehicle', 'game'] as const) await publisher.publish(key, only(events, key));
      await publisher.disconnect();

      const reader = kafkaAs('reader');
      const scores = await eventually(
        () => readAll(reader, topics.scores),
        (r) => r.length > 0,
        120_000,
      );
      const serde = new AvroSerde(configAs('reader').schemaRegistryUrl, topics);
      const first = (await serde.decode<ValueOf<'scores'>>(scores[0]!.value!)).value;
      expect(first).toMatchObject({ session_id: events[0]!.event.session_id, tenant_id: 'sec' });
      expect(first.score).toBeGreaterThanOrEqual(0);
    } finally {
      await rt.lifecycle.close();
    }
  });
});

function only<K extends TopicKey>(events: { topic: string; event: unknown }[], key: K): ValueOf<K>[] {
  return events.filter((e) => e.topic === key).map((e) => e.event as ValueOf<K>);
}
