import type { Config } from '../../core/config';
import { createKafka, ensureTopics, type Admin, type Kafka } from '../../core/kafka';
import { AvroSerde } from '../../core/serde';
import { topicNames, topicKeys, type TopicNames } from '../../schemas/catalogue';
import { topicPlan } from '../../schemas/topics';
import { testLogger } from './env';

/**
 * Kafka, topics and registered schemas for one test file, against the local stack, all under the
 * config's unique topic prefix.
 */
export interface KafkaFixture {
  kafka: Kafka;
  admin: Admin;
  serde: AvroSerde;
  topics: TopicNames;
  close(): Promise<void>;
}

export async function kafkaFixture(config: Config): Promise<KafkaFixture> {
  const kafka = createKafka(config.kafka, testLogger(), 'test');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, topicPlan(config));
  const topics = topicNames(config.topicPrefix);
  const serde = new AvroSerde(config.schemaRegistryUrl, topics);
  await serde.register(topicKeys);
  return { kafka, admin, serde, topics, close: () => admin.disconnect() };
}

/** Every record of a topic from offset 0 to the current end (read_committed). */
export async function readAll(kafka: Kafka, topic: string, timeoutMs = 20_000) {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = ends.reduce((n, p) => n + Number(p.high), 0);
  const out: {
    partition: number;
    offset: string;
    key: Buffer | null;
    value: Buffer | null;
    headers: Record<string, string>;
  }[] = [];
  if (want === 0) return out;
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}-${Math.random()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${out.length} of ${want} records of ${topic}`)), timeoutMs);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        out.push({ partition, offset: message.offset, key: message.key, value: message.value, headers });
        if (out.length >= want) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return out;
}
