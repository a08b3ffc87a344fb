import { loadConfig, type Config } from '../core/config';
import { createLogger } from '../core/logger';
import { createKafka, ensureTopics, type Kafka } from '../core/kafka';
import { AvroSerde } from '../core/serde';
import { topicKeys, topicNames, type TopicNames } from '../schemas/catalogue';
import { topicPlan } from '../schemas/topics';

/**
 * A benchmark's own topics (unique prefix per run) on the stack the VIGIL_* variables point at
 * (the local stack by default), with every schema registered.
 */
export async function benchKafka(
  name: string,
  partitions = 12,
): Promise<{ config: Config; kafka: Kafka; serde: AvroSerde; topics: TopicNames }> {
  const config = loadConfig({
    ...process.env,
    VIGIL_TOPIC_PREFIX: `bench-${name}-${Date.now().toString(36)}`,
    VIGIL_TOPIC_PARTITIONS: String(partitions),
  });
  const kafka = createKafka(config.kafka, createLogger({ level: 'warn', role: `bench-${name}` }), 'bench');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, topicPlan(config));
  await admin.disconnect();
  const topics = topicNames(config.topicPrefix);
  const serde = new AvroSerde(config.schemaRegistryUrl, topics);
  await serde.register(topicKeys);
  return { config, kafka, serde, topics };
}
