import type { IHeaders, KafkaMessage, Producer } from 'kafkajs';
import type { VigilError } from './errors';

/**
 * Dead letters (DESIGN section 3, `<prefix>.dlq.v1`): the original key and value bytes untouched, and
 * headers naming where the record came from and why it was refused, so it can be inspected and
 * replayed. Only non-retriable errors are dead-lettered; transient ones are retried.
 */
export interface DeadLetterSource {
  topic: string;
  partition: number;
  message: KafkaMessage;
  /** Which stage refused it: `decode`, `validate`, `project`, ... */
  phase: string;
  /** Consumer (projection or processor) that refused it. */
  consumer: string;
}

export function deadLetterHeaders(src: DeadLetterSource, err: VigilError): IHeaders {
  return {
    ...src.message.headers,
    'vigil.dlq.source.topic': src.topic,
    'vigil.dlq.source.partition': String(src.partition),
    'vigil.dlq.source.offset': src.message.offset,
    'vigil.dlq.error.code': err.code,
    // The reason in one lower-case word (`tenant_mismatch`, `rule_violation`, `ts_out_of_window`, ...).
    'vigil.dlq.reason': err.code.toLowerCase(),
    'vigil.dlq.error.message': err.message.slice(0, 1000),
    'vigil.dlq.phase': src.phase,
    'vigil.dlq.consumer': src.consumer,
  };
}

export async function deadLetter(
  producer: Producer,
  dlqTopic: string,
  items: { src: DeadLetterSource; err: VigilError }[],
): Promise<void> {
  if (items.length === 0) return;
  await producer.send({
    topic: dlqTopic,
    acks: -1,
    messages: items.map(({ src, err }) => ({
      key: src.message.key,
      value: src.message.value,
      headers: deadLetterHeaders(src, err),
    })),
  });
}
