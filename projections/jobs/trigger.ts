import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { enqueue, type JobRequest, type PgBoss } from '../../core/jobs';
import { VigilError, isVigilError } from '../../core/errors';
import { deadLetter, type DeadLetterSource } from '../../core/dlq';
import type { TopicNames } from '../../schemas/catalogue';
import { TRIGGER_TOPICS, jobRequestsOf, type TriggerTopic } from './requests';

export interface JobTriggerDeps {
  kafka: Kafka;
  serde: AvroSerde;
  topics: TopicNames;
  boss: PgBoss;
  log: Logger;
  groupPrefix: string;
}

/**
 * Turns events into jobs: consumes the sessions and alerts topics (`read_committed`, consumer group
 * `<prefix>.jobs.trigger`), enqueues the jobs each batch asks for (`jobRequestsOf`) in one insert, and
 * only then commits the batch's offsets. A crash in between redelivers the batch and enqueues the same
 * deterministic job ids again, which pg-boss ignores: at-least-once enqueue, one job per event.
 * Undecodable records are dead-lettered with the reason; transient errors (database, registry) make
 * kafkajs retry the batch.
 *
 * A new consumer group starts at the topics' end unless `fromBeginning`: deploying the jobs worker does
 * not report every past session nor call webhooks with every past alert.
 */
export class JobTrigger {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly byName: Map<string, TriggerTopic>;
  /** Job requests enqueued so far (duplicates included: pg-boss drops those). */
  requested = 0;

  constructor(
    private readonly deps: JobTriggerDeps,
    private readonly opts: { fromBeginning?: boolean } = {},
  ) {
    this.consumer = deps.kafka.consumer({
      groupId: `${deps.groupPrefix}.jobs.trigger`,
      sessionTimeout: 10_000,
      heartbeatInterval: 2_000,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    this.producer = deps.kafka.producer({ idempotent: true });
    this.byName = new Map(TRIGGER_TOPICS.map((k) => [deps.topics[k], k]));
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byName.keys()], fromBeginning: !!this.opts.fromBeginning });
    await this.consumer.run({ eachBatchAutoResolve: false, autoCommit: false, eachBatch: (p) => this.onBatch(p) });
  }

  /** Resolves once the consumer has joined its group (partitions assigned). */
  joined(): Promise<void> {
    return new Promise((resolve) => {
      const off = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        off();
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private async onBatch({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isStale }: EachBatchPayload) {
    if (batch.messages.length === 0 || isStale()) return;
    const key = this.byName.get(batch.topic)!;
    const requests: JobRequest[] = [];
    const poison: { src: DeadLetterSource; err: VigilError }[] = [];
    for (const message of batch.messages) {
      try {
        const { value } = await this.deps.serde.decode(message.value);
        requests.push(...jobRequestsOf(key, value));
      } catch (err) {
        if (!isVigilError(err) || err.retriable) throw err; // transient: kafkajs retries the batch
        poison.push({
          src: { topic: batch.topic, partition: batch.partition, message, phase: 'decode', consumer: 'jobs.trigger' },
          err,
        });
      }
    }
    await deadLetter(this.producer, this.deps.topics.dlq, poison);
    for (const p of poison) {
      this.deps.log.warn(
        { code: p.err.code, topic: batch.topic, offset: p.src.message.offset, reason: p.err.message },
        'dead-lettered',
      );
    }
    await enqueue(this.deps.boss, requests);
    this.requested += requests.length;
    resolveOffset(batch.lastOffset());
    await commitOffsetsIfNecessary();
    await heartbeat();
  }
}
