import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Pool } from '../core/db';
import { inTransaction } from '../core/db';
import type { AvroSerde } from '../core/serde';
import type { Logger } from '../core/logger';
import { VigilError, messageOf } from '../core/errors';
import { deadLetterRefusals, type Refusal } from '../core/dlq';
import { dataErrorMessage, findOffenders, isDataError } from '../core/data-error';
import { SessionOwners } from '../core/session-owners';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import type { ProjectedRecord, ReadModel } from './model';
import { inBatchSpan } from '../core/trace-batch';
import { admit } from './screen';
import type { TsWindow } from '../schemas/rules';

/**
 * Applies one read model from Kafka to PostgreSQL, exactly once:
 * - consumes `read_committed`, one batch per topic-partition at a time;
 * - in ONE transaction: locks the `(projection, topic, partition)` checkpoint, drops records below it
 *   (a redelivery), runs the model's statements, and moves the checkpoint past the batch;
 * - only then commits the offset to Kafka, which is a hint: on (re)assignment the runner seeks to
 *   its own checkpoint, so Kafka's committed offset never decides what is applied.
 * Poison never stops a partition (issue 11): undecodable records, records breaking the rule table
 * and records naming a session another tenant owns are dead-lettered before apply (./screen.ts);
 * records whose statements fail with a data error (SQLSTATE class 22/23, a date out of range) are
 * found by splitting the batch and dead-lettered, and the rest of the batch is applied. Transient
 * errors (database connection, serialization failure, deadlock, registry) make kafkajs retry the
 * batch, so nothing is skipped and nothing transient is dead-lettered.
 */
export interface ProjectionRunnerDeps {
  /** The processor's accepted ts window (schemas/rules.ts), checked on externally written topics; absent: not checked. */
  tsWindow?: TsWindow;
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
  /** What `admit` needs: the serde, the shared session owners, the ts window. */
  private readonly screening: Parameters<typeof admit>[0];
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
    this.screening = { serde: deps.serde, owners: new SessionOwners(deps.pool), tsWindow: deps.tsWindow };
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
    const next = BigInt(batch.lastOffset()) + 1n;
    const done = await this.checkpointOf(batch.topic, batch.partition);
    if (done >= next) return this.markDone(batch.lastOffset(), resolveOffset, commitOffsetsIfNecessary); // redelivered batch

    const messageAt = new Map(batch.messages.map((m) => [m.offset, m]));
    // Decoding and screening (rule table, ts window, session ownership): refused records never reach
    // the model. Records before the checkpoint were applied before: a redelivery.
    const fresh = batch.messages.filter((m) => BigInt(m.offset) >= done);
    const { good, refused } = await admit(this.screening, key, fresh);
    const records: ProjectedRecord[] = good.map((a) => ({
      topic: key,
      partition: batch.partition,
      offset: a.message.offset,
      value: a.value,
    }));

    const attributes = {
      'messaging.destination.name': batch.topic,
      'messaging.destination.partition.id': batch.partition,
    };
    const applied = await inBatchSpan(`project ${this.model.name}`, batch.messages, attributes, async () => {
      try {
        return await this.applyInTransaction(batch.topic, batch.partition, records, refused, next, messageAt, false);
      } catch (err) {
        if (!isDataError(err)) throw err; // transient (connection, serialization, deadlock): retried whole
        this.deps.log.warn(
          { projection: this.model.name, topic: batch.topic, partition: batch.partition, err: messageOf(err) },
          'batch failed with a data error; splitting it to find the offending records',
        );
        return this.applyInTransaction(batch.topic, batch.partition, records, refused, next, messageAt, true);
      }
    });
    this.applied += applied;
    await this.markDone(batch.lastOffset(), resolveOffset, commitOffsetsIfNecessary);
    await heartbeat();
  }

  /**
   * One transaction: locks the checkpoint, applies the records not yet applied, dead-letters the
   * refused ones (`refused`: undecodable or screened out) and moves the checkpoint to `next`. The dead
   * letters are produced once the statements succeeded, just before the commit: a transient failure
   * of the statements (retried) sends none, and the checkpoint never moves past a record whose dead
   * letter was not acknowledged by Kafka. With `split` (the whole batch failed with a data error), each part runs in
   * a savepoint and parts failing with a data error are halved until the offending records are found
   * (core/data-error.ts); those are dead-lettered too (DATA_ERROR, phase `project`), and the good
   * records' rows commit with the checkpoint as always. A crash (or a failed COMMIT) between the dead
   * letters and the commit re-applies the batch and dead-letters the same records again: a duplicate
   * dead letter at worst, never a lost one. Answers the records applied.
   */
  private applyInTransaction(
    topic: string,
    partition: number,
    records: readonly ProjectedRecord[],
    refused: readonly Refusal[],
    next: bigint,
    messageAt: ReadonlyMap<string, KafkaMessage>,
    split: boolean,
  ): Promise<number> {
    return inTransaction(this.deps.pool, async (c) => {
      // Locked re-read: another owner of this partition (a rebalance race) may have moved it meanwhile.
      const cp = await c.query<{ next_offset: string }>(
        `SELECT next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE`,
        [this.model.name, topic, partition],
      );
      const from = cp.rows[0] ? BigInt(cp.rows[0].next_offset) : 0n;
      if (from >= next) return 0;
      const todo = records.filter((r) => BigInt(r.offset) >= from);
      const letters = refused.filter((r) => BigInt(r.message.offset) >= from);
      let bad = 0;
      if (!split) {
        for (const s of this.model.project(todo)) await c.query(s.text, s.values);
      } else {
        const offenders = await findOffenders(
          todo,
          async (part) => {
            await c.query('SAVEPOINT vigil_part');
            try {
              for (const s of this.model.project(part)) await c.query(s.text, s.values);
            } catch (err) {
              await c.query('ROLLBACK TO SAVEPOINT vigil_part');
              throw err;
            } finally {
              // Released after a rollback too: parts never nest, so one name serves them all.
              await c.query('RELEASE SAVEPOINT vigil_part').catch(() => {});
            }
          },
          { knownBad: true },
        );
        bad = offenders.length;
        for (const o of offenders) {
          const err = new VigilError('DATA_ERROR', dataErrorMessage(o.err), { cause: o.err });
          letters.push({ message: messageAt.get(o.item.offset)!, phase: 'project', err });
        }
      }
      // Dead letters before the commit that moves the checkpoint past them.
      letters.sort((a, b) => (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
      await this.deadLetter(topic, partition, letters);
      await c.query(
        `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
         ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
        [this.model.name, topic, partition, next.toString()],
      );
      return todo.length - bad;
    });
  }

  private deadLetter(topic: string, partition: number, items: readonly Refusal[]): Promise<void> {
    const { producer } = this;
    const to = {
      producer,
      dlqTopic: this.deps.topics.dlq,
      log: this.deps.log,
      consumer: `projection.${this.model.name}`,
    };
    return deadLetterRefusals(to, topic, partition, items);
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
