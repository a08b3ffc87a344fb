import type {
  Admin,
  Consumer,
  EachBatchPayload,
  IHeaders,
  Kafka,
  KafkaMessage,
  Message,
  Producer,
  Transaction,
} from 'kafkajs';
import { ROOT_CONTEXT, SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { processorInstruments } from './metrics';
import type { Logger } from '../core/logger';
import type { AvroSerde } from '../core/serde';
import { VigilError, isVigilError } from '../core/errors';
import { CoPartitionAssigner } from '../core/copartition';
import { deadLetterHeaders } from '../core/dlq';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import type { TsWindow } from '../schemas/rules';
import { screenRecord } from './screen';
import type { SessionOwners } from '../core/session-owners';
import { PartitionMerger, mergeKeyOf, type MergeItem } from './merge';
import { readChangelog } from './changelog';
import type { Emission, KeyedProcessor } from './keyed';

/**
 * Runs a KeyedProcessor over its co-partitioned input topics with exactly-once semantics
 * (docs/design.md §4):
 * - one consumer group, read_committed, with the co-partitioning assignor: this member owns
 *   partition p of every input topic;
 * - per owned partition p, one transactional producer with the stable id `<group>.p<p>`; creating it
 *   fences a zombie predecessor that owned p;
 * - fetched records go through the per-session event-time merge; released records are stepped; the
 *   outputs, late records, dead letters, the touched sessions' state snapshots (compacted changelog)
 *   and the input offsets all commit in ONE Kafka transaction;
 * - committed input offsets never pass a record still held by the merge; records re-read after a
 *   crash are skipped per session by the snapshot's last-applied offset per topic;
 * - on assignment, state is restored from the changelog before the partition is processed;
 * - trust (issue 11): a record that breaks the rule table, or whose `ts` is outside the accepted
 *   window around its append time (`message.timestamp`: the broker's clock on LogAppendTime topics),
 *   is dead-lettered; a session belongs to the tenant of its first applied record, and a record of
 *   another tenant is dead-lettered (`tenant_mismatch`), also after the session ended (the owner is
 *   remembered `ownerMemoryMs` of append time); idle eviction runs on append time per session.
 * Transient errors (broker, registry) propagate: kafkajs re-fetches from the last commit, and the
 * aborted transaction left nothing behind.
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
}

interface Entry<S> {
  /** null once the session finished: the entry then only remembers its owner. */
  state: S | null;
  /** Last applied offset per input topic (as a bigint string), for de-duplication after a crash. */
  applied: Record<string, string>;
  /** The tenant that owns the session: the one of its first applied record. */
  owner?: string;
  /** Append time of the session's last applied record (idle eviction, owner memory). */
  seenAt?: number;
  /** Owner memory elapsed: dropped (tombstoned) at the next commit. */
  expired?: boolean;
}

/** `owner`: the session's owner claimed in `session_owners` (when the runner has `owners`). */
type Payload = { key: TopicKey; value: unknown; owner?: string } | { poison: VigilError };

interface Partition<S> {
  producer: Producer;
  /** Highest append time released on this partition (its clock), and when sessions were last checked for idleness. */
  clock: number;
  lastTickClock: number;
  merger: PartitionMerger<{ message: KafkaMessage; data: Payload }>;
  sessions: Map<string, Entry<S>>;
  /** Next offset to read per input topic, as fetched (for the commit when nothing is held). */
  fetched: Map<string, bigint>;
  /** Outputs and touched sessions since the last commit (committed together every COMMIT_EVERY_MS). */
  pending: Map<string, Message[]>;
  pendingCount: number;
  dirty: Set<string>;
  lastCommit: number;
  timer?: NodeJS.Timeout;
  /** Serialises batch processing and timed commits of this partition. */
  chain: Promise<void>;
  /** Set when this state was replaced (reset) or revoked: its queued work must not commit. */
  retired?: boolean;
}

/**
 * Transactions are grouped: outputs of several batches commit together at most every
 * COMMIT_EVERY_MS (or COMMIT_MAX_MESSAGES), which bounds the added latency, writes one snapshot per
 * touched session per commit, and avoids back-to-back transactions that the broker answers with
 * CONCURRENT_TRANSACTIONS while it still writes the previous markers.
 */
const COMMIT_EVERY_MS = 100;
/** How often the inputs' caught-up flags are re-checked against the brokers' end offsets. */
const FRESHNESS_EVERY_MS = 500;
const COMMIT_MAX_MESSAGES = 10_000;
/**
 * Bytes (keys + values) per produce request of a commit: a request carries one record batch per
 * partition, and the broker refuses a batch over `max.message.bytes` (1 MiB by default) for good.
 * A backlog's commit (up to COMMIT_MAX_MESSAGES outputs, late copies of input records, session
 * snapshots) can be larger, so it goes out as several requests inside the same transaction.
 */
const REQUEST_MAX_BYTES = 512 * 1024;

/** The commit's messages as produce requests of at most REQUEST_MAX_BYTES (a larger message alone). */
export function requestsOf(
  out: Map<string, Message[]>,
  maxBytes = REQUEST_MAX_BYTES,
): { topic: string; messages: Message[] }[][] {
  const requests: { topic: string; messages: Message[] }[][] = [];
  let current = new Map<string, Message[]>();
  let bytes = 0;
  const sizeOf = (m: Message) =>
    (m.key ? Buffer.byteLength(m.key) : 0) + (m.value ? Buffer.byteLength(m.value) : 0) + 64;
  for (const [topic, messages] of out) {
    for (const m of messages) {
      const size = sizeOf(m);
      if (bytes > 0 && bytes + size > maxBytes) {
        requests.push([...current].map(([t, ms]) => ({ topic: t, messages: ms })));
        current = new Map();
        bytes = 0;
      }
      (current.get(topic) ?? current.set(topic, []).get(topic)!).push(m);
      bytes += size;
    }
  }
  if (bytes > 0) requests.push([...current].map(([t, ms]) => ({ topic: t, messages: ms })));
  return requests;
}

/** Idle and owner-memory checks run every this much of a partition's append-time clock. */
const TICK_EVERY_MS = 5_000;
const OWNER_MEMORY_MS = 7 * 24 * 3_600_000;

/** Transient commit failures retried with the same content before the partition is reset. */
const COMMIT_ATTEMPTS = 8;

/**
 * What an in-process caller (benchmarks, the drills' reference run, specs) reads of this runner to
 * know how far it got. Everything else is an OpenTelemetry instrument (processors/metrics.ts).
 */
export interface RunnerProgress {
  /** Records fetched and handed to the merge. */
  recordsIn: number;
  /** Inputs the processor handed back as late. */
  late: number;
}

export class ProcessorRunner<S> {
  readonly groupId: string;
  private readonly consumer: Consumer;
  private readonly partitions = new Map<number, Promise<Partition<S>>>();
  private readonly byTopicName: Map<string, TopicKey>;
  readonly metrics: RunnerProgress = { recordsIn: 0, late: 0 };
  private readonly tracer = trace.getTracer('vigil.processor');
  private readonly lag = new Map<string, number>();
  private readonly otel = processorInstruments();
  private readonly admin: Admin;
  private freshnessTimer?: NodeJS.Timeout;

  constructor(
    private readonly processor: KeyedProcessor<S>,
    private readonly deps: ProcessorRunnerDeps,
  ) {
    this.groupId = `${deps.groupPrefix}.processor.${processor.name}`;
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
  }

  async start(): Promise<void> {
    await this.admin.connect();
    this.freshnessTimer = setInterval(() => void this.checkFreshness(), FRESHNESS_EVERY_MS);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byTopicName.keys()], fromBeginning: true });
    this.otel.lag.addCallback((r) => {
      for (const [tp, lag] of this.lag) r.observe(lag, { group: this.groupId, topic_partition: tp });
    });
    this.otel.sessions.addCallback(async (r) => {
      let n = 0;
      for (const p of this.partitions.values()) n += (await p.catch(() => undefined))?.sessions.size ?? 0;
      r.observe(n, { group: this.groupId });
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.otel.rebalances.add(1, { group: this.groupId });
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
    clearInterval(this.freshnessTimer);
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

  /** Runs `fn` after everything queued on the partition (batches and timed commits never overlap). */
  private exclusive(part: Partition<S>, fn: () => Promise<void>): Promise<void> {
    const run = part.chain.then(fn);
    part.chain = run.catch(() => {});
    return run;
  }

  /**
   * Re-checks every owned partition's inputs against the brokers' end offsets: a topic whose fetched
   * position is behind its end is not caught up (more is coming), one at its end is. Then releases
   * what that allows (e.g. a barrier waiting for a quiet input).
   */
  private checking = false;
  private async checkFreshness(): Promise<void> {
    if (this.checking || this.partitions.size === 0) return;
    this.checking = true;
    try {
      const owned = [...this.partitions];
      const parts = await Promise.all(
        owned.map(async ([p, promise]) => [p, await promise.catch(() => undefined)] as const),
      );
      const asOf = new Map(parts.map(([p, part]) => [p, part?.merger.nextSeq() ?? 0]));
      const names = [...this.byTopicName.keys()];
      const ends = new Map(
        await Promise.all(names.map(async (t) => [t, await this.admin.fetchTopicOffsets(t)] as const)),
      );
      for (const [p, part] of parts) {
        if (!part || this.partitions.get(p) === undefined) continue;
        await this.exclusive(part, async () => {
          for (const t of names) {
            const end = BigInt(ends.get(t)!.find((o) => o.partition === p)?.high ?? '0');
            part.merger.markCaughtUp(t, (part.fetched.get(t) ?? 0n) >= end, asOf.get(p));
          }
          await this.processReleased(p, part);
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
    // Kept partitions: fetching paused during the rebalance, so their caught-up flags are stale.
    for (const [p, part] of this.partitions)
      if (owned.has(p)) void part.then((x) => x.merger.forgetCaughtUp()).catch(() => {});
    for (const [p, part] of this.partitions) {
      if (!owned.has(p)) {
        this.partitions.delete(p);
        // Uncommitted work is dropped: the new owner redoes it from the last commit.
        void part
          .then((x) => {
            x.retired = true;
            clearTimeout(x.timer);
            return x.producer.disconnect();
          })
          .catch(() => {});
      }
    }
    const fresh = [...owned].filter((p) => !this.partitions.has(p));
    if (fresh.length === 0) return;
    const restored = this.restoreWithRetry(fresh);
    for (const p of fresh)
      this.partitions.set(
        p,
        restored.then((all) => all.get(p)!),
      );
    restored.catch((err) => {
      // Forget them: the batches that await them fail, kafkajs restarts the consumer, and the next
      // assignment restores them afresh.
      for (const p of fresh) this.partitions.delete(p);
      this.deps.log.error({ err, partitions: fresh }, 'restore failed');
    });
  }

  /** Restore, retried with backoff: brokers answer "not the leader" for a while after topic changes. */
  private async restoreWithRetry(partitions: number[], attempts = 8): Promise<Map<number, Partition<S>>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.restore(partitions);
      } catch (err) {
        if (attempt >= attempts) throw err;
        const delay = Math.min(5_000, 250 * 2 ** attempt);
        this.deps.log.warn({ err: (err as Error).message, partitions, attempt, delay }, 'restore failed, retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async restore(partitions: number[]): Promise<Map<number, Partition<S>>> {
    const t0 = performance.now();
    const { kafka, topics } = this.deps;
    // Producers first: InitProducerId fences the previous owner of p and completes or aborts its open
    // transaction, so the changelog and offsets read below are final.
    const producers = new Map<number, Producer>();
    const names = [...this.byTopicName.keys()];
    let snapshots: Map<string, Buffer>;
    let committed: Awaited<ReturnType<Admin['fetchOffsets']>>;
    let ends: (readonly [string, Awaited<ReturnType<Admin['fetchTopicOffsets']>>])[];
    try {
      for (const p of partitions) {
        const producer = kafka.producer({
          transactionalId: `${this.groupId}.p${p}`,
          idempotent: true,
          maxInFlightRequests: 1,
        });
        producers.set(p, producer);
        await producer.connect();
      }
      snapshots = await readChangelog(kafka, topics.changelog, partitions);
      committed = await this.admin.fetchOffsets({ groupId: this.groupId, topics: names });
      ends = await Promise.all(names.map(async (t) => [t, await this.admin.fetchTopicOffsets(t)] as const));
    } catch (err) {
      for (const producer of producers.values()) await producer.disconnect().catch(() => {});
      throw err;
    }

    const out = new Map<number, Partition<S>>();
    for (const p of partitions) {
      const merger = new PartitionMerger<{ message: KafkaMessage; data: Payload }>(names);
      const fetched = new Map<string, bigint>();
      for (const [topic, offsets] of ends) {
        const o = offsets.find((x) => x.partition === p);
        const c = committed.find((x) => x.topic === topic)?.partitions.find((x) => x.partition === p)?.offset;
        const position = c !== undefined && c !== '-1' ? BigInt(c) : BigInt(o?.low ?? '0');
        fetched.set(topic, position);
        merger.markCaughtUp(topic, position >= BigInt(o?.high ?? '0'));
      }
      out.set(p, {
        pending: new Map(),
        pendingCount: 0,
        dirty: new Set(),
        lastCommit: 0,
        chain: Promise.resolve(),
        producer: producers.get(p)!,
        clock: -Infinity,
        lastTickClock: -Infinity,
        merger,
        sessions: new Map(),
        fetched,
      });
    }
    for (const [session, bytes] of snapshots) {
      const { p, applied, state, owner, seenAt } = JSON.parse(bytes.toString()) as {
        p: number;
        applied: Record<string, string>;
        state?: string;
        owner?: string;
        seenAt?: number;
      };
      out.get(p)?.sessions.set(session, {
        applied,
        state: state === undefined ? null : this.processor.deserialize(state),
        owner,
        seenAt,
      });
    }
    const ms = Math.round(performance.now() - t0);
    this.otel.restore.record(ms, { group: this.groupId });
    this.deps.log.info({ partitions, sessions: snapshots.size, ms }, 'state restored');
    return out;
  }

  private async onBatch({ batch, heartbeat, isStale, isRunning, resolveOffset }: EachBatchPayload): Promise<void> {
    const part = await this.partitions.get(batch.partition);
    if (!part || isStale() || !isRunning()) return;
    const key = this.byTopicName.get(batch.topic)!;
    const items: MergeItem<{ message: KafkaMessage; data: Payload }>[] = [];
    let lastTs = 0;
    for (const message of batch.messages) {
      const session = message.key?.toString() ?? '';
      let data: Payload;
      let ts = lastTs;
      try {
        const { value } =
          this.deps.serde.decodeKnown<{ ts?: unknown; session_id?: unknown }>(message.value) ??
          (await this.deps.serde.decode<{ ts?: unknown; session_id?: unknown }>(message.value));
        if (typeof value.ts !== 'number' || value.session_id !== session) {
          throw new VigilError(
            'EVENT_INVALID',
            `record ts or session_id missing, or session_id differs from the key ${JSON.stringify(session)}`,
          );
        }
        const refused = screenRecord(key, { ...value, ts: value.ts }, Number(message.timestamp), this.deps.tsWindow);
        if (refused) throw refused;
        data = { key, value };
        ts = value.ts;
      } catch (err) {
        if (!isVigilError(err) || err.retriable) throw err;
        data = { poison: err };
      }
      lastTs = ts;
      const barrier = 'value' in data && !!this.processor.isBarrier?.(key, data.value);
      // Merged per (session, tenant): another tenant's records naming the session cannot reorder its owner's.
      const tenant = 'value' in data ? (data.value as { tenant_id?: unknown }).tenant_id : undefined;
      items.push({
        topic: batch.topic,
        session: mergeKeyOf(session, tenant),
        offset: message.offset,
        ts,
        barrier,
        payload: { message, data },
      });
    }
    // Owners are claimed before anything is merged: a database error (retriable) fails the batch
    // here, and kafkajs fetches it again, with nothing of it held or applied.
    if (this.deps.owners) {
      const claims = items.flatMap((i) => {
        const d = i.payload.data;
        const v = 'value' in d ? (d.value as { session_id?: unknown; tenant_id?: unknown }) : undefined;
        return typeof v?.session_id === 'string' && typeof v.tenant_id === 'string'
          ? [{ session_id: v.session_id, tenant_id: v.tenant_id }]
          : [];
      });
      const owners = claims.length ? await this.deps.owners.claim(claims) : new Map<string, string>();
      for (const i of items) {
        const d = i.payload.data;
        if ('value' in d) d.owner = owners.get((d.value as { session_id: string }).session_id);
      }
    }
    this.metrics.recordsIn += items.length;
    this.otel.recordsIn.add(items.length, { topic: batch.topic });
    this.lag.set(`${batch.topic}/${batch.partition}`, Number(batch.offsetLag()));
    await this.exclusive(part, async () => {
      part.fetched.set(batch.topic, BigInt(batch.lastOffset()) + 1n);
      part.merger.push(batch.topic, items, batch.offsetLag() === '0');
      await this.processReleased(batch.partition, part);
    });
    // The fetch position moves on: these records are held by the merge or committed. (The committed
    // offset, set in the transaction, is what a restart resumes from.) On an error above, the batch
    // is fetched again and the runner's per-session de-duplication drops what was already applied.
    resolveOffset(batch.lastOffset());
    await heartbeat();
  }

  private async processReleased(p: number, part: Partition<S>): Promise<void> {
    const released = part.merger.release();
    if (released.length === 0) return;
    const { topics, serde } = this.deps;
    const emit = (topic: string, m: Message) => {
      (part.pending.get(topic) ?? part.pending.set(topic, []).get(topic)!).push(m);
      part.pendingCount++;
    };
    const touched = part.dirty;

    const apply = (
      session: string,
      entry: Entry<S>,
      outputs: Emission[],
      cause?: { message: KafkaMessage; topic: string; offset: string },
    ) => {
      part.sessions.set(session, entry);
      touched.add(session);
      if (outputs.length === 0) return;
      const headers = cause ? this.continueTrace(cause.message.headers) : {};
      for (const o of outputs) {
        if ('late' in o) {
          if (!cause) continue;
          emit(topics.late, {
            key: cause.message.key,
            value: cause.message.value,
            headers: {
              ...cause.message.headers,
              'vigil.late.source.topic': cause.topic,
              'vigil.late.source.offset': cause.offset,
            },
          });
          this.metrics.late++;
          this.otel.late.add(1);
        } else {
          emit(topics[o.topic], { key: o.value.session_id, value: serde.encode(o.topic, o.value as never), headers });
          this.otel.recordsOut.add(1, { topic: o.topic });
          const ts = (o.value as { ts?: number }).ts;
          if (typeof ts === 'number') this.otel.emitLatency.record(Date.now() - ts, { topic: o.topic });
        }
      }
    };

    const deadLetter = (item: (typeof released)[number], err: VigilError, phase: string) => {
      const { message } = item.payload;
      emit(topics.dlq, {
        key: message.key,
        value: message.value,
        headers: deadLetterHeaders({ topic: item.topic, partition: p, message, phase, consumer: this.groupId }, err),
      });
      this.otel.dlq.add(1, { topic: item.topic, reason: err.code.toLowerCase() });
    };

    for (const item of released) {
      const { message, data } = item.payload;
      const session = message.key?.toString() ?? ''; // item.session is the merge key (session and tenant)
      const appendTs = Number(message.timestamp);
      if (appendTs > part.clock) part.clock = appendTs;
      if ('poison' in data) {
        deadLetter(item, data.poison, 'validate');
        continue;
      }
      const existing = part.sessions.get(session);
      const tenant = (data.value as { tenant_id?: unknown }).tenant_id;
      // Before the re-read check: another tenant's records come from a merge stream of their own, so
      // they may be released after the owner's records of higher offsets (`applied` is the owner's).
      const owner = existing?.owner ?? data.owner;
      if (owner !== undefined && tenant !== owner) {
        deadLetter(
          item,
          new VigilError('TENANT_MISMATCH', `session ${session} belongs to another tenant than ${String(tenant)}`, {
            details: { session_id: session, tenant_id: tenant },
          }),
          'validate',
        );
        continue;
      }
      const applied = existing?.applied[item.topic];
      if (applied !== undefined && BigInt(item.offset) <= BigInt(applied)) continue; // re-read after a crash
      const entry = existing ?? { state: null, applied: {} };
      entry.owner ??= owner ?? (typeof tenant === 'string' ? tenant : undefined);
      entry.expired = false;
      // A session that ended and speaks again (same owner) starts afresh, as a new life of the id.
      const { state, outputs } = this.processor.step(
        entry.state ?? this.processor.initial(session),
        data.key,
        data.value,
      );
      // Finished: only the owner stays, at once (not at the next commit, whose timing is the wall
      // clock's), so a later record of the id is a new life however the commits fell (and on replay).
      entry.state = this.processor.finished(state) ? null : state;
      entry.applied[item.topic] = item.offset;
      entry.seenAt = appendTs;
      apply(session, entry, outputs, { message, topic: item.topic, offset: item.offset });
    }

    // Idle eviction and owner memory, on the partition's append-time clock (never on event time: no
    // session's clock, forged or not, can end another session).
    if (part.clock - part.lastTickClock >= TICK_EVERY_MS) {
      part.lastTickClock = part.clock;
      const idleAfter = this.processor.idleAfterMs ?? Infinity;
      const memory = this.deps.ownerMemoryMs ?? OWNER_MEMORY_MS;
      for (const [session, entry] of part.sessions) {
        entry.seenAt ??= part.clock; // restored from an older snapshot: counts from now
        const quiet = part.clock - entry.seenAt;
        if (entry.state === null) {
          if (quiet >= memory) {
            entry.expired = true;
            touched.add(session);
          }
        } else if (this.processor.evict && quiet >= idleAfter) {
          const { state, outputs } = this.processor.evict(entry.state);
          const finished = this.processor.finished(state);
          entry.state = finished ? null : state;
          if (outputs.length || finished) apply(session, entry, outputs);
        }
      }
    }

    if (part.pendingCount >= COMMIT_MAX_MESSAGES || Date.now() - part.lastCommit >= COMMIT_EVERY_MS) {
      // Queued behind the current task rather than awaited: the caller returns and kafkajs moves on to
      // other partitions while this one's transaction commits; this partition's next batch waits for it.
      this.scheduleFlush(p, part);
    } else {
      part.timer ??= setTimeout(() => {
        part.timer = undefined;
        this.scheduleFlush(p, part);
      }, COMMIT_EVERY_MS);
    }
  }

  private scheduleFlush(p: number, part: Partition<S>): void {
    clearTimeout(part.timer);
    part.timer = undefined;
    void this.exclusive(part, () => this.flush(p, part)).catch((err) =>
      this.deps.log.error({ err, partition: p }, 'commit failed'),
    );
  }

  /** Commits what is pending on the partition: outputs, the touched sessions' snapshots, offsets. */
  private async flush(p: number, part: Partition<S>): Promise<void> {
    clearTimeout(part.timer);
    part.timer = undefined;
    if (part.retired || (part.pendingCount === 0 && part.dirty.size === 0)) return;
    const out = part.pending;
    const changelog: Message[] = [];
    for (const session of part.dirty) {
      const entry = part.sessions.get(session);
      if (!entry || entry.expired) {
        part.sessions.delete(session);
        changelog.push({ key: session, value: null });
        continue;
      }
      // A finished session keeps only its owner (and the offsets that de-duplicate re-reads).
      if (entry.state !== null && this.processor.finished(entry.state)) entry.state = null;
      const { applied, owner, seenAt } = entry;
      const state = entry.state === null ? undefined : this.processor.serialize(entry.state);
      changelog.push({ key: session, value: JSON.stringify({ p, applied, state, owner, seenAt }) });
    }
    if (changelog.length)
      out.set(this.deps.topics.changelog, [...(out.get(this.deps.topics.changelog) ?? []), ...changelog]);
    part.pending = new Map();
    part.pendingCount = 0;
    part.dirty = new Set();
    await this.commit(p, part, out);
    part.lastCommit = Date.now();
  }

  /**
   * Commits outputs, snapshots and input offsets in one transaction. The in-memory state already
   * reflects this batch, so a transient failure is retried (with backoff) with the same content until
   * it commits. A fenced producer means another member owns p now: the partition is dropped here, and
   * its new owner restores from the changelog. A producer that cannot even begin a transaction (e.g.
   * left in COMMITTING when the broker went away mid-commit: whether that commit landed is unknown),
   * or one that keeps failing, is not retried with the same content: the partition is reset instead.
   */
  private async commit(p: number, part: Partition<S>, out: Map<string, Message[]>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let tx: Transaction | undefined;
      try {
        tx = await part.producer.transaction();
        for (const topicMessages of requestsOf(out)) await tx.sendBatch({ acks: -1, topicMessages });
        await tx.sendOffsets({ consumerGroupId: this.groupId, topics: this.commitOffsets(p, part) });
        await tx.commit();
        return;
      } catch (err) {
        await tx?.abort().catch(() => {});
        if (part.retired) return;
        const type = (err as { type?: string }).type ?? '';
        if (/FENCED|INVALID_PRODUCER_EPOCH/.test(type) || !this.partitions.has(p)) {
          this.deps.log.warn({ partition: p, type }, 'producer fenced or partition revoked; dropping partition state');
          part.retired = true;
          this.partitions.delete(p);
          return;
        }
        if (!tx || attempt >= COMMIT_ATTEMPTS) {
          this.resetPartition(p, part, err);
          return;
        }
        const delay = Math.min(5_000, 100 * 2 ** attempt);
        this.deps.log.warn({ err, partition: p, attempt, delay }, 'transaction failed, retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Throws away the partition's in-memory state and producer and restores it as after a rebalance: a
   * new producer with the same transactional id (InitProducerId completes or aborts whatever the old
   * one left open), the sessions from the changelog, and the consumer sought back to the committed
   * input offsets. Whatever the cut transaction held is then either committed (and de-duplicated by
   * the restored `applied` offsets) or redone; nothing is skipped and nothing is emitted twice.
   */
  private resetPartition(p: number, part: Partition<S>, cause: unknown): void {
    this.deps.log.warn({ err: cause, partition: p }, 'transactional producer unusable; restoring the partition');
    part.retired = true;
    clearTimeout(part.timer);
    const restored = part.producer
      .disconnect()
      .catch(() => {})
      .then(() => this.restoreWithRetry([p]))
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
        this.deps.log.error({ err, partition: p }, 'restore after a failed commit failed');
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

  /** Per input topic: the lowest offset still held by the merge, else the next offset to fetch. */
  private commitOffsets(p: number, part: Partition<S>) {
    const lowest = part.merger.lowestHeldOffsets();
    return [...part.fetched].map(([topic, next]) => ({
      topic,
      partitions: [{ partition: p, offset: String(lowest.get(topic) ?? next) }],
    }));
  }
}
