import type { Kafka, Producer } from 'kafkajs';
import { CompressionTypes } from 'kafkajs';
import type { TopicKey, TopicNames, ValueOf } from '../schemas/catalogue';
import type { AvroSerde } from '../core/serde';
import { keyOf, traceHeaders } from '../core/kafka';
import { VigilError } from '../core/errors';

/**
 * The producer library: typed `publish` for any catalogue event. Idempotent producer with acks=all,
 * key = session_id (so every topic is co-partitioned by session), `traceparent` in the headers.
 * A batch is validated whole before anything is sent: either every event of a call is handed to
 * Kafka or none is, and `publish` resolves only once Kafka acknowledged them.
 */
export class Publisher {
  private readonly producer: Producer;

  constructor(
    kafka: Kafka,
    private readonly serde: AvroSerde,
    private readonly topics: TopicNames,
  ) {
    this.producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  async publish<K extends TopicKey>(key: K, events: readonly ValueOf<K>[]): Promise<void> {
    if (events.length === 0) return;
    const headers = traceHeaders();
    const messages = events.map((e) => ({ key: keyOf(e), value: this.serde.encode(key, e), headers }));
    try {
      await this.producer.send({ topic: this.topics[key], acks: -1, compression: CompressionTypes.None, messages });
    } catch (cause) {
      throw new VigilError('KAFKA_UNAVAILABLE', `publishing to ${this.topics[key]} failed`, { cause, retriable: true });
    }
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}
