import type { Admin, Consumer, EachBatchPayload, IHeaders, Kafka, Message } from 'kafkajs';
import { ROOT_CONTEXT, SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { processorInstruments } from './metrics';
import type { Logger } from '../core/logger';
import type { AvroSerde } from '../core/serde';
import { CoPartitionAssigner } from '../core/copartition';
import { deadLetterHeaders } from '../core/dlq';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import type { TsWindow } from '../schemas/rules';
import type { SessionOwners } from '../core/session-owners';
import type { KeyedProcessor } from './keyed';
import { commitPending } from './committer';
import { decodeBatch } from './decode';
import { restoreWithRetry, type LivePartition, type RestoreContext } from './restore';

/**
 * Runs a KeyedProcessor over its co-partitioned input topics with exactly-once semantics
 * (docs/design.md §4). This file is the Kafka part; what happens to the records is the pure
 * PartitionDriver's (processors/partition-driver.ts), which `vigil rescore` replays too:
 * - one consumer group, read_committed, with the co-partitioning assignor: this member owns
 *   partition p of every input topic;
 * - per owned partition p, one transactional producer with the stable id `<group>.p<p>`; creating it
 *   fences a zombie predecessor that owned p; on assignment, state is restored from the changelog
 *   before the partition is processed (restore.ts);
 * - fetched records are decoded (decode.ts) and handed to the partition's driver; its outputs, late
 *   records, dead letters, the touched sessions' snapshots (compacted changelog) and the input
 *   offsets all commit in ONE Kafka transaction (committer.ts);
 * - committed input offsets never pass a record still held by the merge; records re-read after a
 *   crash are skipped per session by the snapshot's last-applied offset per topic;
 * - trust (issue 11): a record that breaks the rule table, or whose `ts` is outside the accepted
 *   window around its append time (`message.timestamp`: the broker's clock on LogAppendTime topics),
 *   is dead-lettered; so is a record naming a session of another tenant (`tenant_mismatch`).
 * Transient errors (broker, registry) propagate: kafkajs re-fetches from the last commit, and the
 * aborted transaction left nothing behind.
 *
 * Size: a little above the house's ~400 lines on purpose. What is left here is one state machine per
 * owned partition (assigned → restoring → running → flushing → reset or revoked) and the timers that
 * drive it; splitting it further would put its transitions in several files.
 */
export interface ProcessorRunnerDeps {
  kafka: Kafka;
  serde: AvroSerde;
  topics: TopicNames;
  log: Logger;
  groupPrefix: string;
  /** Accepted `ts` window around each record's append time (default DEFAULT_TS_WINDOW). */
  tsWindow?: TsWindow;
  /** How long (append time) an ended session's owner is remembered (default 7 days). */
  ownerMemoryMs?: number;
  /**
   * The session owners of the gateway and the projections (core/session-owners.ts: the first claim
   * of an id wins, for good), claimed per batch before anything is merged, so every consumer agrees
   * on a session's tenant. Absent (in-process tests, the drills' reference run): the tenant of a
   * session's first applied record owns it.
   */
  owners?: Pick<SessionOwners, 'claim'>;
  /** Outputs wait at most this long for their transaction (default DEFAULT_COMMIT_EVERY_MS). */
  commitEveryMs?: number;
  /** Changed state without outputs waits at most this long (default DEFAULT_CHECKPOINT_EVERY_MS). */
  checkpointEveryMs?: number;
  /**
   * Input records to leave out, as if never written (counted in, not applied). Only the drills'
   * reference replay sets it: it leaves out what the live run found late, so both process the same
   * accepted input (bench/drills/audit.ts).
   */
  exclude?: (topic: string, partition: number, offset: string) => boolean;
}

/**
 * Commit cadence (docs/design.md §4, README `VIGIL_PROCESSOR_COMMIT_MS` and
 * `VIGIL_PROCESSOR_CHECKPOINT_MS`). One process-wide tick every `commitEveryMs` commits the
 * partitions that have outputs waiting (scores, alerts, late copies, dead letters): that bounds the
 * added latency of an output. A partition whose only news is changed session state (no output) is
 * committed at most every `checkpointEveryMs`: its snapshots and input offsets simply wait (exactly
 * once either way: state and offsets always commit together). So the number of transactions follows
 * the outputs (scores end windows on shared hop boundaries, so they come in bursts), not
 * partitions x ticks; a backlog also commits as soon as COMMIT_MAX_MESSAGES are waiting.
 */
export const DEFAULT_COMMIT_EVERY_MS = 100;
export const DEFAULT_CHECKPOINT_EVERY_MS = 2_000;
const COMMIT_MAX_MESSAGES = 10_000;

/**
 * What an in-process caller reads of this runner to know how far it got: the benchmark and the
 * drills' reference run wait for `recordsIn` to reach what they produced, and the runner spec
 * asserts `late` of a run. OpenTelemetry counters cannot be read back in-process without installing
 * a reader, so these two stay; every other measure is an instrument (processors/metrics.ts).
 */
export interface RunnerProgress {
  /** Records fetched and handed to the merge. */
  recordsIn: number;
  /** Inputs the processor handed back as late. */
  late: number;
}

export class ProcessorRunner<S> {
  readonly groupId: string;
  readonly metrics: RunnerProgress = { recordsIn: 0, late: 0 };
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly partitions = new Map<number, Promise<LivePartition<S>>>();
  /** Partition numbers of this member's last assignment (GROUP_JOIN). */
  private assigned = new Set<number>();
  private readonly byTopicName: Map<string, TopicKey>;
  private readonly tracer = trace.getTracer('vigil.processor');
  private readonly lag = new Map<string, number>();
  private readonly otel = processorInstruments();
  private readonly restoring: RestoreContext<S>;
  private tickTimer?: NodeJS.Timeout;
  private checking = false;
  private stopping = false;
  private readonly commitEveryMs: number;
  private readonly checkpointEveryMs: number;

  constructor(
    private readonly processor: KeyedProcessor<S>,
    private readonly deps: ProcessorRunnerDeps,
  ) {
    this.groupId = `${deps.groupPrefix}.processor.${processor.name}`;
    this.commitEveryMs = deps.commitEveryMs ?? DEFAULT_COMMIT_EVERY_MS;
    this.checkpointEveryMs = Math.max(this.commitEveryMs, deps.checkpointEveryMs ?? DEFAULT_CHECKPOINT_EVERY_MS);
    this.byTopicName = new Map(processor.inputs.map((k) => [deps.topics[k], k]));
    this.admin = deps.kafka.admin();
    this.consumer = deps.kafka.consumer({
      groupId: this.groupId,
      partitionAssigners: [CoPartitionAssigner],
      readUncommitted: false,
      allowAutoTopicCreation: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 2_000,
    });
    this.restoring = {
      kafka: deps.kafka,
      admin: this.admin,
      topics: deps.topics,
      processor,
      groupId: this.groupId,
      log: deps.log,
      ownerMemoryMs: deps.ownerMemoryMs,
      onRestored: (ms) => this.otel.restore.record(ms / 1000),
    };
  }

  async start(): Promise<void> {
    await this.admin.connect();
    // One tick re-checks the inputs' caught-up flags and commits: a record held for a quiet input's
    // check then waits about as long as an output waits for its transaction (it waited up to 500 ms
    // with a fixed 500 ms check). Only partitions holding records are checked (checkFreshness).
    this.tickTimer = setInterval(() => {
      void this.checkFreshness();
      this.commitTick();
    }, this.commitEveryMs);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byTopicName.keys()], fromBeginning: true });
    this.otel.lag.addCallback((r) => {
      const byTopic = new Map<string, number>();
      for (const [tp, lag] of this.lag) {
        const topic = this.byTopicName.get(tp.slice(0, tp.lastIndexOf('/'))) ?? 'unknown';
        byTopic.set(topic, (byTopic.get(topic) ?? 0) + lag);
      }
      for (const [topic, lag] of byTopic) r.observe(lag, { topic });
    });
    this.otel.sessions.addCallback(async (r) => {
      let n = 0;
      for (const p of this.partitions.values()) n += (await p.catch(() => undefined))?.driver.size ?? 0;
      r.observe(n);
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.otel.rebalances.add(1);
      for (const tp of [...this.lag.keys()]) {
        const at = tp.lastIndexOf('/'); // revoked partitions leave the lag gauge
        if (!payload.memberAssignment[tp.slice(0, at)]?.includes(Number(tp.slice(at + 1)))) this.lag.delete(tp);
      }
      this.onAssignment(payload.memberAssignment);
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions are independent (per-partition state, merge, producer and task chain), so several
      // are worked on at once; batches of one partition number still run one after another.
      partitionsConsumedConcurrently: 4,
      eachBatch: (b) => this.onBatch(b),
    });
  }

  /** Stops consuming, commits what was processed, then closes the producers. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.tickTimer);
    await this.consumer.disconnect();
    await this.admin.disconnect().catch(() => {});
    for (const [p, promise] of this.partitions) {
      const part = await promise.catch(() => undefined);
      if (!part) continue;
      await this.exclusive(part, () => this.flush(p, part)).catch((err) =>
        this.deps.log.warn({ err, partition: p }, 'final commit failed'),
      );
      await part.producer.disconnect();
    }
    this.partitions.clear();
  }

  /**
   * Records the merges of the owned partitions hold (fetched, not yet released to the processor) and
   * outputs waiting for their commit: 0 once everything fetched is processed and committed. For
   * in-process callers that must know a run is complete (the drills' reference replay).
   */
  async unsettled(): Promise<number> {
    let n = 0;
    for (const promise of this.partitions.values()) {
      const part = await promise.catch(() => undefined);
      if (part && !part.retired) n += part.driver.held + part.pendingCount + part.dirty.size;
    }
    return n;
  }

  /** Runs `fn` after everything queued on the partition (batches and timed commits never overlap). */
  private exclusive(part: LivePartition<S>, fn: () => Promise<void>): Promise<void> {
    const run = part.chain.then(fn);
    part.chain = run.catch(() => {});
    return run;
  }

  /**
   * Re-checks the inputs of every owned partition whose merge holds records against the brokers' end
   * offsets: a topic whose fetched position is behind its end is not caught up (more is coming), one
   * at its end is. Then releases what that allows (e.g. a barrier waiting for a quiet input).
   * A partition holding nothing has nothing the flags could release, so it is not checked, and when
   * no partition holds anything (caught up, or idle) no request is sent at all; the next fetched
   * batch sets its topic's flag itself (caught up when it reaches the high watermark).
   */
  private async checkFreshness(): Promise<void> {
    if (this.checking || this.partitions.size === 0) return;
    this.checking = true;
    try {
      const owned = [...this.partitions];
      const parts = (
        await Promise.all(owned.map(async ([p, promise]) => [p, await promise.catch(() => undefined)] as const))
      ).filter(([, part]) => part !== undefined && part.driver.held > 0);
      if (parts.length === 0) return;
      const asOf = new Map(parts.map(([p, part]) => [p, part?.driver.nextSeq() ?? 0]));
      // What "caught up" claims for the continuous inputs: records appended before the check.
      const checkedAt = Date.now();
      const names = [...this.byTopicName.keys()];
      const ends = new Map(
        await Promise.all(names.map(async (t) => [t, await this.admin.fetchTopicOffsets(t)] as const)),
      );
      for (const [p, part] of parts) {
        if (!part || this.partitions.get(p) === undefined) continue;
        await this.exclusive(part, async () => {
          for (const [t, key] of this.byTopicName) {
            const end = BigInt(ends.get(t)!.find((o) => o.partition === p)?.high ?? '0');
            part.driver.markCaughtUp(key, (part.fetched.get(t) ?? 0n) >= end, asOf.get(p), checkedAt);
          }
          this.processReleased(p, part);
        });
      }
    } catch (err) {
      this.deps.log.debug({ err }, 'freshness check failed');
    } finally {
      this.checking = false;
    }
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const owned = new Set(Object.values(assignment).flat());
    this.assigned = owned;
    // Kept partitions: fetching paused during the rebalance, so their caught-up flags are stale.
    for (const [p, part] of this.partitions)
      if (owned.has(p)) void part.then((x) => x.driver.forgetCaughtUp()).catch(() => {});
    for (const [p, part] of this.partitions) {
      if (!owned.has(p)) {
        this.partitions.delete(p);
        // Uncommitted work is dropped: the new owner redoes it from the last commit.
        void part
          .then((x) => {
            x.retired = true;
            return x.producer.disconnect();
          })
          .catch(() => {});
      }
    }
    const fresh = [...owned].filter((p) => !this.partitions.has(p));
    if (fresh.length === 0) return;
    const restored = restoreWithRetry(this.restoring, fresh);
    for (const p of fresh)
      this.partitions.set(
        p,
        restored.then((all) => all.get(p)!),
      );
    restored.catch((err) => {
      // Forget them: the next batch of each (still assigned) restores it afresh (onBatch).
      for (const p of fresh) this.partitions.delete(p);
      this.deps.log.error({ err, partitions: fresh }, 'restore failed');
    });
  }

  private async onBatch({ batch, heartbeat, isStale, isRunning, resolveOffset }: EachBatchPayload): Promise<void> {
    const entry = this.partitions.get(batch.partition);
    const part = await entry?.catch(() => undefined);
    if (!part || part.retired) {
      // Assigned, but without live state: it was fenced by a member that took it over in a rebalance
      // this member did not see end (kafkajs tells a member only its own assignments), or its restore
      // failed. Its batches are not processed until it is restored afresh, from the changelog and the
      // committed offsets (the check and the restore's registration are one synchronous step, so
      // concurrent batches of the partition's other topics start one restore, not several).
      if (
        isRunning() &&
        !this.stopping &&
        this.assigned.has(batch.partition) &&
        this.partitions.get(batch.partition) === entry
      )
        this.restorePartition(batch.partition, part, 'assigned partition without live state');
      return;
    }
    if (isStale() || !isRunning()) return;
    const key = this.byTopicName.get(batch.topic)!;
    const { exclude } = this.deps;
    const messages = exclude
      ? batch.messages.filter((m) => !exclude(batch.topic, batch.partition, m.offset))
      : batch.messages;
    const records = await decodeBatch(this.deps.serde, key, messages, this.deps.tsWindow);
    // Owners are claimed before anything is merged: a database error (retriable) fails the batch
    // here, and kafkajs fetches it again, with nothing of it held or applied.
    if (this.deps.owners) {
      const claims = records.flatMap((r) => {
        const v = 'value' in r ? (r.value as { session_id?: unknown; tenant_id?: unknown }) : undefined;
        return typeof v?.session_id === 'string' && typeof v.tenant_id === 'string'
          ? [{ session_id: v.session_id, tenant_id: v.tenant_id }]
          : [];
      });
      const owners = claims.length ? await this.deps.owners.claim(claims) : new Map<string, string>();
      for (const r of records) {
        if ('value' in r) r.owner = owners.get((r.value as { session_id: string }).session_id);
      }
    }
    this.metrics.recordsIn += batch.messages.length; // left-out records included (exclude)
    this.otel.recordsIn.add(records.length, { topic: key });
    this.lag.set(`${batch.topic}/${batch.partition}`, Number(batch.offsetLag()));
    await this.exclusive(part, async () => {
      part.fetched.set(batch.topic, BigInt(batch.lastOffset()) + 1n);
      part.driver.push(key, records, batch.offsetLag() === '0');
      this.processReleased(batch.partition, part);
    });
    // The fetch position moves on: these records are held by the merge or committed. (The committed
    // offset, set in the transaction, is what a restart resumes from.) On an error above, the batch
    // is fetched again and the driver's per-session de-duplication drops what was already applied.
    resolveOffset(batch.lastOffset());
    await heartbeat();
  }

  /** Drives the partition and stages what it asks to write for the next commit. */
  private processReleased(p: number, part: LivePartition<S>): void {
    const out = part.driver.drive();
    if (out.released === 0) return;
    const { topics, serde } = this.deps;
    const emit = (topic: string, m: Message) => {
      (part.pending.get(topic) ?? part.pending.set(topic, []).get(topic)!).push(m);
      part.pendingCount++;
    };
    for (const { record, error } of out.refused) {
      const source = { topic: topics[record.topic], partition: p, message: record.meta, phase: 'validate' };
      emit(topics.dlq, {
        key: record.meta.key,
        value: record.meta.value,
        headers: deadLetterHeaders({ ...source, consumer: this.groupId }, error),
      });
      this.otel.dlq.add(1, { reason: error.code.toLowerCase() });
    }
    // One trace span per record whose step produced events; its outputs carry the span's context.
    let traced: { cause: unknown; headers: IHeaders } | undefined;
    const now = Date.now(); // the emit-latency measure only: the driver never sees the wall clock
    for (const { topic, value, cause } of out.events) {
      if (cause && traced?.cause !== cause) traced = { cause, headers: this.continueTrace(cause.meta.headers) };
      const headers = cause ? traced!.headers : {};
      emit(topics[topic], { key: value.session_id, value: serde.encode(topic, value as never), headers });
      this.otel.recordsOut.add(1, { topic });
      // From the append time of the input record whose step produced the output (outputs of an idle
      // eviction have no such record and are not measured): the processor's own delay, not the
      // 2 s lateness a window waits for by design.
      if (cause) this.otel.emitLatency.record((now - Number(cause.meta.timestamp)) / 1000, { topic });
    }
    for (const record of out.late) {
      const { key, value, headers } = record.meta;
      emit(topics.late, {
        key,
        value,
        headers: {
          ...headers,
          'vigil.late.source.topic': topics[record.topic],
          'vigil.late.source.partition': String(p),
          'vigil.late.source.offset': record.offset,
        },
      });
      this.metrics.late++;
      this.otel.late.add(1);
    }
    if (out.duplicates) this.otel.duplicates.add(out.duplicates);
    for (const session of out.touched) part.dirty.add(session);
    // A backlog does not wait for the tick (a commit's size stays bounded).
    if (part.pendingCount >= COMMIT_MAX_MESSAGES) this.scheduleFlush(p, part);
  }

  /**
   * The process-wide commit tick: commits every owned partition that has outputs waiting, and those
   * with only changed state once `checkpointEveryMs` passed since their last commit. Idle partitions
   * cost nothing.
   */
  private commitTick(): void {
    const now = Date.now();
    for (const [p, promise] of this.partitions) {
      void promise
        .then((part) => {
          // A fenced partition that is still assigned is restored even if no batch comes to do it
          // (records its merge held would otherwise wait for the next input).
          if (part.retired && !this.stopping && this.assigned.has(p) && this.partitions.get(p) === promise)
            this.restorePartition(p, part, 'assigned partition without live state');
          if (part.retired || part.flushQueued) return;
          const due = part.pendingCount > 0 || (part.dirty.size > 0 && now - part.lastCommit >= this.checkpointEveryMs);
          if (due) this.scheduleFlush(p, part);
        })
        .catch(() => {});
    }
  }

  /**
   * Queued behind the current task rather than awaited: the caller returns and kafkajs moves on to
   * other partitions while this one's transaction commits; this partition's next batch waits for it.
   */
  private scheduleFlush(p: number, part: LivePartition<S>): void {
    if (part.flushQueued) return;
    part.flushQueued = true;
    void this.exclusive(part, () => this.flush(p, part)).catch((err) =>
      this.deps.log.error({ err, partition: p }, 'commit failed'),
    );
  }

  /**
   * Commits what is pending on the partition (committer.ts). A fenced producer means another member
   * took p over: this state is retired (its uncommitted work dropped); if p is still, or again,
   * assigned here, its next batch restores it afresh. A failed transaction resets the partition.
   */
  private async flush(p: number, part: LivePartition<S>): Promise<void> {
    part.flushQueued = false;
    const outcome = await commitPending(p, part, {
      groupId: this.groupId,
      topics: this.deps.topics,
      log: this.deps.log,
      owns: () => this.assigned.has(p),
    });
    if (outcome.kind === 'fenced') {
      this.deps.log.warn(
        { partition: p, type: outcome.type },
        'producer fenced or partition revoked; dropping partition state',
      );
      part.retired = true;
      // Kept in the map while assigned (the next batch restores it); a revoked one was removed by onAssignment.
      void part.producer.disconnect().catch(() => {});
    } else if (outcome.kind === 'unusable' && !this.stopping) {
      this.restorePartition(p, part, outcome.error);
    }
    if (outcome.kind !== 'skipped') part.lastCommit = Date.now();
  }

  /**
   * Throws away the partition's in-memory state and producer (if any) and restores it as after a
   * rebalance: a new producer with the same transactional id (InitProducerId: a new epoch, which
   * fences any other holder and completes or aborts whatever was left open), the sessions from the
   * changelog, and the consumer sought back to the committed input offsets. Whatever a cut
   * transaction held is then either committed (and de-duplicated by the restored `applied` offsets)
   * or redone; nothing is skipped and nothing is emitted twice.
   */
  private restorePartition(p: number, previous: LivePartition<S> | undefined, cause: unknown): void {
    this.deps.log.info({ cause: cause instanceof Error ? cause.message : cause, partition: p }, 'restoring partition');
    if (previous) previous.retired = true;
    const restored = (previous ? previous.producer.disconnect().catch(() => {}) : Promise.resolve())
      .then(() => restoreWithRetry(this.restoring, [p]))
      .then((all) => all.get(p)!);
    this.partitions.set(p, restored);
    // Registered before any batch awaits the new state, so the seek comes first and batches fetched
    // from the old position read as stale.
    restored
      .then((fresh) => {
        for (const [topic, next] of fresh.fetched) this.consumer.seek({ topic, partition: p, offset: String(next) });
      })
      .catch((err) => {
        if (this.partitions.get(p) === restored) this.partitions.delete(p);
        this.deps.log.error({ err, partition: p }, 'restore failed; the next batch of the partition tries again');
      });
  }

  /**
   * Trace continuity: a span for the processing of the record that caused outputs, child of the
   * record's `traceparent` (device → gateway → Kafka → here); its context goes into the outputs'
   * headers, so the projections continue the same trace.
   */
  private continueTrace(inputHeaders: IHeaders | undefined): IHeaders {
    const carrier: Record<string, string> = {};
    for (const [k, v] of Object.entries(inputHeaders ?? {})) if (v !== undefined) carrier[k] = String(v);
    const parent = propagation.extract(ROOT_CONTEXT, carrier);
    const span = this.tracer.startSpan(`${this.processor.name} process`, { kind: SpanKind.CONSUMER }, parent);
    const out: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), span), out);
    span.end();
    return out;
  }
}
