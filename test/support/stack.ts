import type { Config } from '../../core/config';
import { createKafka, ensureTopics, type Admin, type Kafka } from '../../core/kafka';
import { AvroSerde } from '../../core/serde';
import { topicNames, topicKeys, type TopicNames } from '../../schemas/catalogue';
import { topicPlan } from '../../schemas/topics';
import { readToEnd } from '../../core/read-to-end';
import { testLogger } from './env';
import { setUp } from './fixture';

/**
 * Kafka, topics and registered schemas for one test file, against the local stack, all under the
 * config's unique topic prefix. `close()` disconnects the admin client (also when the set-up fails).
 */
export interface KafkaFixture {
  kafka: Kafka;
  admin: Admin;
  serde: AvroSerde;
  topics: TopicNames;
  close(): Promise<void>;
}

export function kafkaFixture(config: Config): Promise<KafkaFixture> {
  return setUp(async (onClose) => {
    const kafka = createKafka(config.kafka, testLogger(), 'test');
    const admin = kafka.admin();
    await admin.connect();
    onClose(() => admin.disconnect());
    await ensureTopics(admin, topicPlan(config));
    const topics = topicNames(config.topicPrefix);
    const serde = new AvroSerde(config.schemaRegistryUrl, topics);
    await serde.register(topicKeys);
    return { kafka, admin, serde, topics };
  });
}

/** Every record of a topic from offset 0 to its current end (read_committed), headers as strings. */
export async function readAll(kafka: Kafka, topic: string, timeoutMs = 30_000) {
  const records = await readToEnd(kafka, topic, { timeoutMs });
  return records.map((r) => ({
    ...r,
    headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)])),
  }));
}
