import { requestsOf } from './produce-requests';
import type { IHeaders, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from './logger';
import type { VigilError } from './errors';

/**
 * Dead letters (docs/design.md §2, `<prefix>.dlq.v1`): the original key and value bytes untouched, and
 * headers naming where the record came from and why it was refused, so it can be inspected and
 * replayed. Only non-retriable errors are dead-lettered; transient ones are retried.
 */
interface DeadLetterSource {
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

async function deadLetter(
  producer: Producer,
  dlqTopic: string,
  items: { src: DeadLetterSource; err: VigilError }[],
): Promise<void> {
  if (items.length === 0) return;
  const messages = items.map(({ src, err }) => ({
    key: src.message.key,
    value: src.message.value,
    headers: deadLetterHeaders(src, err),
  }));
  // A batch of refused records can be larger than one request may be: several sends, in order.
  for (const request of requestsOf(new Map([[dlqTopic, messages]]))) {
    for (const { topic, messages: part } of request) await producer.send({ topic, acks: -1, messages: part });
  }
}

/** A record a consumer refused: the stage that refused it and why. */
export interface Refusal {
  message: KafkaMessage;
  phase: 'decode' | 'validate' | 'project';
  err: VigilError;
}

/**
 * Dead-letters the refusals of one batch of `topic`/`partition` in one send and logs each: what the
 * reactor (core/reactor.ts: projection runners, the jobs trigger) does before it moves past them.
 */
export async function deadLetterRefusals(
  to: { producer: Producer; dlqTopic: string; log: Logger; consumer: string },
  topic: string,
  partition: number,
  refusals: readonly Refusal[],
): Promise<void> {
  await deadLetter(
    to.producer,
    to.dlqTopic,
    refusals.map(({ message, phase, err }) => ({
      src: { topic, partition, message, phase, consumer: to.consumer },
      err,
    })),
  );
  for (const { message, err } of refusals) {
    to.log.warn(
      { code: err.code, reason: err.code.toLowerCase(), topic, partition, offset: message.offset, detail: err.message },
      'dead-lettered',
    );
  }
}
