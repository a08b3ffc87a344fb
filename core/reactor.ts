import { context, type Context } from '@opentelemetry/api';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from './logger';
import type { Checkpointer } from './checkpoint';
import { VigilError, messageOf } from './errors';
import { deadLetterRefusals, type Refusal } from './dlq';
import { dataErrorMessage, findOffenders, isDataError } from './data-error';
import { inBatchSpan } from './trace-batch';
import { ProjectionMetrics } from './metrics-projection';

/** A decoded record of one batch, as the handler gets it (`topic`: the consumer's own name for the topic). */
export interface ReactorRecord<Key> {
  topic: Key;
  partition: number;
  offset: string;
  value: unknown;
  /** The Kafka record's timestamp (ms since the epoch, as kafkajs gives it): the freshness metric's start. */
  timestamp?: string;
}

/** What the decode-and-screen step answers: the records to apply, and the refused ones with why. */
export interface Admission {
  good: { message: KafkaMessage; value: unknown }[];
  refused: Refusal[];
}

interface ReactorOptions<Key, Scope> {
  kafka: Kafka;
  log: Logger;
  groupId: string;
  /** Topic name → the consumer's key for it. */
  topics: ReadonlyMap<string, Key>;
  /** Where a new consumer group starts: the topics' beginning, or their end. */
  fromBeginning: boolean;
  /**
   * Decodes and screens a batch's messages. Refusals (non-retriable) are dead-lettered; a thrown
   * error fails the batch, which is fetched again (a registry or database that cannot answer now).
   */
  admit(key: Key, messages: readonly KafkaMessage[]): Promise<Admission>;
  checkpointer: Checkpointer<Scope>;
  /**
   * Applies records (one topic-partition, offset order) through `scope`. A data error
   * (core/data-error.ts) makes the reactor split the batch to find the offending records; any other
   * error fails the batch, which is fetched again.
   */
  apply(scope: Scope, records: readonly ReactorRecord<Key>[]): Promise<void>;
  /** Called with the records of each batch once they are applied and checkpointed (offenders left out). */
  onApplied?(records: readonly ReactorRecord<Key>[]): void;
  dlqTopic: string;
  /** Who refused, in the dead letters' `vigil.dlq.consumer` header and in logs (`projection.eeg`, `jobs.trigger`). */
  consumer: string;
  /**
   * Where one reactor serves several consumers (one consumer group for every PostgreSQL read model,
   * each reading its own topics): the consumer of a topic (name), for dead letters, logs and metrics.
   * Absent: `consumer` for every topic.
   */
  consumerOf?(topic: string): string;
  /**
   * Fetch settings (core/config.ts `VIGIL_PROJECTION_FETCH_*`): the broker answers a fetch once
   * `minBytes` are there or after `maxWaitTimeInMs`. Absent: kafkajs's defaults (1 byte, 5 s), a
   * fetch per record that arrives when the input is slow.
   */
  fetch?: { minBytes: number; maxWaitTimeInMs: number };
  /** Name of the span each batch runs in (core/trace-batch.ts). */
  spanName: string;
  /** With `consumerOf`: the span name of a topic's batches. */
  spanNameOf?(topic: string): string;
}

/**
 * Topic-partition batches one reactor takes at once. With a checkpointer that commits several
 * batches in one unit (`commitMany`), the batches waiting while a unit is being written go into the
 * next one together (group commit): one PostgreSQL transaction per fetch rather than per batch.
 * Without it, each batch is its own unit and they run side by side.
 */
const PARTITIONS_IN_PARALLEL = 16;
/** How often offsets that are only a hint (see step 4) are committed to Kafka. */
const HINT_COMMIT_MS = 5_000;

/**
 * The consume loop every projection consumer runs (PostgreSQL read models, the Redis read model, the
 * jobs trigger), configured with a checkpointer (core/checkpoint.ts) and a handler. Per batch of one
 * topic-partition:
 * 1. read the checkpoint; a batch entirely below it is a redelivery and is skipped, and records below
 *    it are dropped. The checkpoint is read BEFORE decoding: a redelivery costs no registry lookup and
 *    no session-ownership claim, and decoding (which may wait on the registry) stays outside the
 *    checkpointer's unit of work, so a PostgreSQL transaction holds its row lock only for the writes;
 * 2. decode and screen (`admit`): refused records never reach the handler;
 * 3. in the checkpointer's unit: apply the records, and on a data error run the unit again splitting
 *    the batch until the offending records are found (DATA_ERROR, phase `project`); dead-letter every
 *    refusal (one send, acknowledged by Kafka), then move the checkpoint past the batch. Dead letters
 *    go out once the effects succeeded and before the checkpoint moves: a transient failure sends none,
 *    a crash in between sends them again (a duplicate dead letter at worst, never a lost one);
 * 4. resolve and commit the batch's Kafka offset (the checkpoint itself with Kafka offsets, committed
 *    per batch; a hint for the next owner otherwise, committed together at most every 5 s, since on
 *    assignment the reactor seeks to the checkpointer's positions), heartbeat.
 * Batches of several topic-partitions that are ready together go through step 3 in ONE unit when the
 * checkpointer can (`commitMany`: one PostgreSQL transaction per fetch, each checkpoint row still
 * locked and moved with its own batch's effects); a data error in that unit sends each batch through
 * step 3 on its own, where it is split as above. A checkpointer that re-reads under a lock
 * (`rereadsInUnit`) has step 1 answered from what this reactor last committed, so a batch costs no
 * read outside the unit (the locked re-read stays the authority).
 * Any other error fails the batch and kafkajs fetches it again: nothing transient is dead-lettered and
 * nothing is skipped (docs/design.md §4). Consumption is `read_committed`, several partitions at once
 * (batches of one partition stay in order); a killed member's partitions move after 10 s.
 */
export class Reactor<Key, Scope> {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  /** Records applied (not counting redeliveries dropped by the checkpoint, nor offenders). */
  applied = 0;
  /** `vigil_projection_*{projection}` (core/metrics-projection.ts, docs/metrics.md), per consumer name. */
  private readonly metricsByConsumer = new Map<string, ProjectionMetrics>();
  /** With a re-reading checkpointer: the next offset this reactor committed per `topic/partition` (forgotten on rebalance). */
  private readonly committed = new Map<string, bigint>();
  /** Batches waiting for the next group commit, and whether one is being written. */
  private queue: Queued<Key>[] = [];
  private flushing = false;
  /** Kafka offsets are the checkpoint only when the checkpointer has no positions of its own. */
  private readonly offsetsAreHints: boolean;
  /** Hint offsets not yet committed (`topic/partition` → next offset), and when they last were. */
  private readonly hints = new Map<string, { topic: string; partition: number; offset: string }>();
  private hintsCommittedAt = 0;

  constructor(private readonly options: ReactorOptions<Key, Scope>) {
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      ...(options.fetch ?? {}),
      // A killed member's partitions move after 10 s instead of kafkajs's default 30 s.
      sessionTimeout: 10_000,
      heartbeatInterval: 2_000,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    this.producer = options.kafka.producer({ idempotent: true });
    this.offsetsAreHints = options.checkpointer.positions !== undefined;
  }

  private consumerOf(topic: string): string {
    return this.options.consumerOf?.(topic) ?? this.options.consumer;
  }

  private metricsOf(topic: string): ProjectionMetrics {
    const name = this.consumerOf(topic);
    let m = this.metricsByConsumer.get(name);
    if (!m) this.metricsByConsumer.set(name, (m = new ProjectionMetrics(name)));
    return m;
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [...this.options.topics.keys()],
      fromBeginning: this.options.fromBeginning,
    });
    // Lag as of each fetch: records from the batch on when it starts (a batch that keeps failing keeps
    // the gauge growing), past it once it is through; batches of transaction markers alone count too.
    const { START_BATCH_PROCESS, END_BATCH_PROCESS, GROUP_JOIN } = this.consumer.events;
    for (const topic of this.options.topics.keys()) this.metricsOf(topic);
    this.consumer.on(START_BATCH_PROCESS, ({ payload: b }) =>
      this.metricsOf(b.topic).lag(b.topic, b.partition, Number(b.offsetLagLow) + 1),
    );
    this.consumer.on(END_BATCH_PROCESS, ({ payload: b }) =>
      this.metricsOf(b.topic).lag(b.topic, b.partition, Number(b.offsetLag)),
    );
    this.consumer.on(GROUP_JOIN, (e) => {
      this.committed.clear(); // another owner may have moved what this reactor last committed
      this.hints.clear(); // partitions this member may no longer own
      for (const m of this.metricsByConsumer.values()) m.assigned(e.payload.memberAssignment);
    });
    const { positions } = this.options.checkpointer;
    if (positions) {
      this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
        positions(e.payload.memberAssignment)
          .then((found) => found.forEach((p) => this.consumer.seek(p)))
          .catch((err: unknown) =>
            this.options.log.warn(
              { err: messageOf(err), consumer: this.options.consumer },
              'seek to checkpoint failed; relying on the in-batch check',
            ),
          );
      });
    }
    await this.consumer.run({
      eachBatchAutoResolve: false,
      // Committed by the reactor (kafkajs's auto-commit sends an OffsetCommit after every batch).
      autoCommit: false,
      // Partitions are independent (each has its own checkpoint, and a session's events all live in one
      // partition): applying several at once keeps the consumer busy while one waits on its store.
      partitionsConsumedConcurrently: PARTITIONS_IN_PARALLEL,
      eachBatch: (p) => this.onBatch(p),
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
    for (const m of this.metricsByConsumer.values()) m.close();
  }

  private async onBatch(payload: EachBatchPayload) {
    try {
      await this.onBatchMeasured(payload);
    } catch (err) {
      this.metricsOf(payload.batch.topic).batch('retried'); // kafkajs fetches it again
      throw err;
    }
  }

  private async onBatchMeasured({
    batch,
    resolveOffset,
    commitOffsetsIfNecessary,
    heartbeat,
    isStale,
  }: EachBatchPayload) {
    if (batch.messages.length === 0 || isStale()) return;
    const { topic, partition } = batch;
    const metrics = this.metricsOf(topic);
    const next = BigInt(batch.lastOffset()) + 1n;
    const from = await this.checkpointOf(topic, partition);
    if (from < next) {
      const key = this.options.topics.get(topic)!;
      const fresh = from > 0n ? batch.messages.filter((m) => BigInt(m.offset) >= from) : batch.messages;
      const { good, refused } = await this.options.admit(key, fresh);
      const records = good.map((a) => ({
        topic: key,
        partition,
        offset: a.message.offset,
        value: a.value,
        timestamp: a.message.timestamp,
      }));
      const attributes = { 'messaging.destination.name': topic, 'messaging.destination.partition.id': partition };
      const pending = { topic, partition, from, next, records, refused, messages: batch.messages };
      const spanName = this.options.spanNameOf?.(topic) ?? this.options.spanName;
      const applied = await inBatchSpan(spanName, batch.messages, attributes, () =>
        this.options.checkpointer.commitMany ? this.enqueue(pending) : this.applyOnce(pending),
      );
      this.applied += applied.length;
      metrics.applied(applied.map((r) => r.timestamp ?? ''));
      metrics.batch('applied');
      if (applied.length > 0) this.options.onApplied?.(applied);
    } else metrics.batch('skipped');
    resolveOffset(batch.lastOffset());
    // Committed explicitly: with autoCommit off, kafkajs's `commitOffsetsIfNecessary()` without offsets
    // commits nothing (it commits resolved offsets only on an auto-commit interval or threshold).
    // A failed commit (the partition moved in a rebalance) costs a redelivery at most, which the
    // checkpoint (or the effects' idempotence, with Kafka offsets) absorbs: logged, not retried.
    // Offsets that are only a hint wait and go out together, at most once per HINT_COMMIT_MS.
    let offsets = { topics: [{ topic, partitions: [{ partition, offset: next.toString() }] }] };
    if (this.offsetsAreHints) {
      this.hints.set(`${topic}/${partition}`, { topic, partition, offset: next.toString() });
      if (Date.now() - this.hintsCommittedAt < HINT_COMMIT_MS) {
        await heartbeat();
        return;
      }
      this.hintsCommittedAt = Date.now();
      const byTopic = new Map<string, { partition: number; offset: string }[]>();
      for (const h of this.hints.values()) byTopic.set(h.topic, [...(byTopic.get(h.topic) ?? []), h]);
      this.hints.clear();
      offsets = {
        topics: [...byTopic].map(([t, ps]) => ({
          topic: t,
          partitions: ps.map(({ partition: p, offset }) => ({ partition: p, offset })),
        })),
      };
    }
    await commitOffsetsIfNecessary(offsets).catch((err: unknown) =>
      this.options.log.warn(
        { consumer: this.consumerOf(topic), topic, partition, err: messageOf(err) },
        'offset commit failed',
      ),
    );
    await heartbeat();
  }

  /**
   * Step 1: the checkpoint to admit from. A checkpointer that re-reads under its lock is answered from
   * what this reactor committed last (0n-based read on the first batch after an assignment).
   */
  private async checkpointOf(topic: string, partition: number): Promise<bigint> {
    if (!this.options.checkpointer.rereadsInUnit) return this.options.checkpointer.read(topic, partition);
    const known = this.committed.get(`${topic}/${partition}`);
    return known ?? this.options.checkpointer.read(topic, partition);
  }

  private remember(pending: Pending<Key>): void {
    if (this.options.checkpointer.rereadsInUnit)
      this.committed.set(`${pending.topic}/${pending.partition}`, pending.next);
  }

  /** Group commit: the batch joins the next unit; answers its records applied. */
  private enqueue(pending: Pending<Key>): Promise<readonly ReactorRecord<Key>[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ pending, trace: context.active(), resolve, reject });
      // On the next turn, so the batches kafkajs hands over together (one fetch) share the unit.
      if (!this.flushing) setImmediate(() => void this.flush());
    });
  }

  /** Writes the waiting batches in one unit, then the ones that arrived meanwhile, until none wait. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        await this.applyGroup(group);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async applyGroup(group: Queued<Key>[]): Promise<void> {
    const commitMany = this.options.checkpointer.commitMany!.bind(this.options.checkpointer);
    try {
      const results = await commitMany(
        group.map(({ pending, trace }) => ({
          topic: pending.topic,
          partition: pending.partition,
          span: { from: pending.from, next: pending.next },
          apply: (scope: Scope, checkpoint: bigint) =>
            context.with(trace, () => this.applyFrom(scope, checkpoint, false, pending)),
        })),
      );
      group.forEach((q, i) => {
        this.remember(q.pending);
        q.resolve(results[i] ?? []);
      });
    } catch (err) {
      if (!isDataError(err) || group.length === 1) {
        // Transient (every batch is fetched again), or one batch: its own unit finds the offenders.
        if (group.length === 1) return this.applyAlone(group[0]!);
        for (const q of group) q.reject(err);
        return;
      }
      // A data error somewhere: each batch in a unit of its own, where the offending records are found.
      for (const q of group) await this.applyAlone(q);
    }
  }

  private async applyAlone(q: Queued<Key>): Promise<void> {
    try {
      q.resolve(await context.with(q.trace, () => this.applyOnce(q.pending)));
    } catch (err) {
      q.reject(err);
    }
  }

  /** The batch in one unit of the checkpointer, split on a data error; answers the records applied. */
  private async applyOnce(pending: Pending<Key>): Promise<readonly ReactorRecord<Key>[]> {
    const { topic, partition, from, next } = pending;
    const run = (split: boolean) =>
      this.options.checkpointer.commit(topic, partition, { from, next }, (scope, checkpoint) =>
        this.applyFrom(scope, checkpoint, split, pending),
      );
    try {
      const applied = (await run(false)) ?? [];
      this.remember(pending);
      return applied;
    } catch (err) {
      if (!isDataError(err)) throw err; // transient (connection, serialization, deadlock): retried whole
      this.options.log.warn(
        { consumer: this.consumerOf(topic), topic, partition, err: messageOf(err) },
        'batch failed with a data error; splitting it to find the offending records',
      );
      const applied = (await run(true)) ?? [];
      this.remember(pending);
      return applied;
    }
  }

  /** Inside the unit: applies the records at or past `checkpoint` (split: part by part), then dead-letters. */
  private async applyFrom(
    scope: Scope,
    checkpoint: bigint,
    split: boolean,
    pending: Pending<Key>,
  ): Promise<readonly ReactorRecord<Key>[]> {
    const todo = pending.records.filter((r) => BigInt(r.offset) >= checkpoint);
    const letters = pending.refused.filter((r) => BigInt(r.message.offset) >= checkpoint);
    let applied = todo;
    if (!split) await this.options.apply(scope, todo);
    else {
      const { isolate } = this.options.checkpointer;
      const offenders = await findOffenders(
        todo,
        (part) => (isolate ? isolate(scope, () => this.options.apply(scope, part)) : this.options.apply(scope, part)),
        { knownBad: true },
      );
      const bad = new Set(offenders.map((offender) => offender.item));
      applied = todo.filter((r) => !bad.has(r));
      const messageAt = new Map(pending.messages.map((m) => [m.offset, m]));
      for (const offender of offenders) {
        const err = new VigilError('DATA_ERROR', dataErrorMessage(offender.err), { cause: offender.err });
        letters.push({ message: messageAt.get(offender.item.offset)!, phase: 'project', err });
      }
    }
    letters.sort((a, b) => (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
    if (letters.length > 0) {
      const to = {
        producer: this.producer,
        dlqTopic: this.options.dlqTopic,
        log: this.options.log,
        consumer: this.consumerOf(pending.topic),
      };
      await deadLetterRefusals(to, pending.topic, pending.partition, letters);
      this.metricsOf(pending.topic).deadLettered(letters.map((l) => l.err.code.toLowerCase()));
    }
    return applied;
  }
}

/** One batch on its way through the unit of work: what was read, decoded and refused before it. */
interface Pending<Key> {
  topic: string;
  partition: number;
  /** The checkpoint read before decoding, and the offset past the batch. */
  from: bigint;
  next: bigint;
  records: readonly ReactorRecord<Key>[];
  refused: readonly Refusal[];
  messages: readonly KafkaMessage[];
}

/** A batch waiting for a group commit, and its caller's promise. */
interface Queued<Key> {
  pending: Pending<Key>;
  /** The batch's trace context: its statements are its span's children, whichever batch began the unit. */
  trace: Context;
  resolve(applied: readonly ReactorRecord<Key>[]): void;
  reject(err: unknown): void;
}
