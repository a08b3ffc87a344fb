import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Pool } from '../core/db';
import { inTransaction } from '../core/db';
import type { AvroSerde } from '../core/serde';
import type { Logger } from '../core/logger';
import { VigilError, isVigilError } from '../core/errors';
import { deadLetter, type DeadLetterSource } from '../core/dlq';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import type { ProjectedRecord, ReadModel } from './model';
import { inBatchSpan } from '../core/trace-batch';

/**
 * Applies one read model from Kafka to PostgreSQL, exactly once:
 * - consumes `read_committed`, one batch per topic-partition at a time;
 * - in ONE transaction: locks the `(projection, topic, partition)` checkpoint, drops records below it
 *   (a redelivery), runs the model's statements, and moves the checkpoint past the batch;
 * - only then commits the offset to Kafka, which is a hint: on (re)assignment the runner seeks to
 *   its own checkpoint, so Kafka's committed offset never decides what is applied.
 * Undecodable records are dead-lettered with the reason; transient errors (database, registry) make
 * kafkajs retry the batch, so nothing is skipped.
 */
export interface ProjectionRunnerDeps {
  kafka: Kafka;
  pool: Pool;
  serde: AvroSerde;
  topics: TopicNames;
  log: Logger;
  groupPrefix: string;
}

/** Partitions applied at once per runner (each in its own transaction, on its own pooled connection). */
export const PARTITIONS_IN_PARALLEL = 4;

export class ProjectionRunner {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly byName: Map<string, TopicKey>;
  /** Records applied (not counting redeliveries dropped by the checkpoint). */
  applied = 0;

  constructor(
    private readonly model: ReadModel,
    private readonly deps: ProjectionRunnerDeps,
  ) {
    this.consumer = deps.kafka.consumer({
      groupId: `${deps.groupPrefix}.projection.${model.name}`,
      // A killed member's partitions move after 10 s instead of kafkajs's default 30 s.
      sessionTimeout: 10_000,
      heartbeatInterval: 2_000,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    this.producer = deps.kafka.producer({ idempotent: true });
    this.byName = new Map(model.topics.map((k) => [deps.topics[k], k]));
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byName.keys()], fromBeginning: true });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      void this.seekToCheckpoints(e.payload.memberAssignment).catch((err) =>
        this.deps.log.warn(
          { err, projection: this.model.name },
          'seek to checkpoint failed; relying on the in-transaction check',
        ),
      );
    });
    await this.consumer.run({
      eachBatchAutoResolve: false,
      autoCommit: false,
      // Partitions are independent (each has its own checkpoint row, and a session's events all live in
      // one partition), so several are applied at once: the profile showed the runner idle most of the
      // time waiting on PostgreSQL, one batch at a time. Batches of one partition stay in order.
      partitionsConsumedConcurrently: PARTITIONS_IN_PARALLEL,
      eachBatch: (p) => this.onBatch(p),
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private async seekToCheckpoints(assignment: Record<string, number[]>): Promise<void> {
    const topics = Object.keys(assignment);
    if (topics.length === 0) return;
    const { rows } = await this.deps.pool.query<{ topic: string; partition: number; next_offset: string }>(
      `SELECT topic, partition, next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = ANY($2)`,
      [this.model.name, topics],
    );
    for (const r of rows) {
      if (assignment[r.topic]?.includes(r.partition)) {
        this.consumer.seek({ topic: r.topic, partition: r.partition, offset: r.next_offset });
      }
    }
  }

  private async onBatch({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isStale }: EachBatchPayload) {
    if (batch.messages.length === 0 || isStale()) return;
    const key = this.byName.get(batch.topic)!;
    const records: ProjectedRecord[] = [];
    const poison: { src: DeadLetterSource; err: VigilError }[] = [];
    for (const message of batch.messages) {
      try {
        const { value } = await this.deps.serde.decode(message.value);
        records.push({ topic: key, partition: batch.partition, offset: message.offset, value });
      } catch (err) {
        if (isVigilError(err) && !err.retriable) {
          poison.push({
            src: {
              topic: batch.topic,
              partition: batch.partition,
              message,
              phase: 'decode',
              consumer: `projection.${this.model.name}`,
            },
            err,
          });
        } else throw err; // transient: kafkajs retries the batch
      }
    }
    const next = BigInt(batch.lastOffset()) + 1n;
    const done = await this.checkpointOf(batch.topic, batch.partition);
    if (done >= next) return this.markDone(batch.lastOffset(), resolveOffset, commitOffsetsIfNecessary); // redelivered batch

    // Dead letters before the commit that moves past them: a crash in between re-sends them (at least
    // once), never loses them.
    const fresh = poison.filter((p) => BigInt(p.src.message.offset) >= done);
    await deadLetter(this.producer, this.deps.topics.dlq, fresh);
    for (const p of fresh) {
      this.deps.log.warn(
        { code: p.err.code, topic: batch.topic, offset: p.src.message.offset, reason: p.err.message },
        'dead-lettered',
      );
    }

    const attributes = {
      'messaging.destination.name': batch.topic,
      'messaging.destination.partition.id': batch.partition,
    };
    const applied = await inBatchSpan(`project ${this.model.name}`, batch.messages, attributes, () =>
      inTransaction(this.deps.pool, async (c) => {
        // Locked re-read: another owner of this partition (a rebalance race) may have moved it meanwhile.
        const cp = await c.query<{ next_offset: string }>(
          `SELECT next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE`,
          [this.model.name, batch.topic, batch.partition],
        );
        const from = cp.rows[0] ? BigInt(cp.rows[0].next_offset) : 0n;
        if (from >= next) return 0;
        const todo = records.filter((r) => BigInt(r.offset) >= from);
        for (const s of this.model.project(todo)) await c.query(s.text, s.values);
        await c.query(
          `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
         ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
          [this.model.name, batch.topic, batch.partition, next.toString()],
        );
        return todo.length;
      }),
    );
    this.applied += applied;
    await this.markDone(batch.lastOffset(), resolveOffset, commitOffsetsIfNecessary);
    await heartbeat();
  }

  private async checkpointOf(topic: string, partition: number): Promise<bigint> {
    const { rows } = await this.deps.pool.query<{ next_offset: string }>(
      `SELECT next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3`,
      [this.model.name, topic, partition],
    );
    return rows[0] ? BigInt(rows[0].next_offset) : 0n;
  }

  /** Tells Kafka how far we are (a hint for the next owner; the checkpoint table is the truth). */
  private async markDone(
    lastOffset: string,
    resolveOffset: (o: string) => void,
    commit: () => Promise<void>,
  ): Promise<void> {
    resolveOffset(lastOffset);
    await commit();
  }
}
