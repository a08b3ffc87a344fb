import type { TopicKey } from '../../schemas/catalogue';
import type { Emission, KeyedProcessor } from '../keyed';
import { PartitionMerger, mergeKeyOf } from '../merge';

/**
 * Replays recorded input through a KeyedProcessor the way the live ProcessorRunner feeds it, without
 * Kafka, transactions or a changelog: per partition number, the same event-time merge
 * (PartitionMerger: per session by (ts, topic order), SessionEnded as a barrier), the same `step`, and
 * the same trust rules (a session belongs to the tenant of its first record; another tenant's
 * records are refused) and the same idle eviction (by append time, per session). Pure: no clock, no I/O; the same records give the same outputs per
 * session whatever the batch boundaries (the merge's contract).
 *
 * Unlike the live runner, the inputs are finite: the caller says when a topic-partition has been read
 * to its end (`reached`), and `finish()` releases whatever is still held. Sessions that did not end
 * within the input are left open (their windows up to the watermark are scored, as live would have
 * at that point); nothing is flushed at the end of the input. Memory: the records the merge holds
 * back, plus the state of each open session (an ended session keeps only its owner, as in the live
 * runner, until the end of the input).
 */
export interface ReplayRecord {
  offset: string;
  session: string;
  ts: number;
  /** The record's append time (`message.timestamp`); absent: its ts stands in (tests without Kafka). */
  appendTs?: number;
  /** The session's owner from `session_owners` (as the live runner claims it); absent: the first record's tenant. */
  owner?: string;
  value: unknown;
}

/** An output of the processor for one session, in the order the processor produced it. */
export type ReplayOutput = Extract<Emission, { topic: TopicKey }>;

export interface ReplayCounts {
  /** Records stepped through the processor. */
  stepped: number;
  /** Inputs the processor handed back as late (the live runner would write them to the late topic). */
  late: number;
  /** Records naming a session another tenant owns (the live runner dead-letters them). */
  tenantMismatch: number;
}

interface SessionReplay<S> {
  /** null once the session finished: only its owner is remembered. */
  state: S | null;
  owner: unknown;
  seenAt: number;
}

interface PartitionReplay<S> {
  merger: PartitionMerger<{ value: unknown; appendTs: number; session: string; owner?: string }>;
  /** Inputs read to their end on this partition (their end is final: the range stops at the start's end offsets). */
  done: Set<TopicKey>;
  /** Highest offset pushed per input topic: a redelivered batch is dropped, as the live runner drops it. */
  pushed: Map<TopicKey, bigint>;
  sessions: Map<string, SessionReplay<S>>;
  clock: number;
  lastTickClock: number;
}

/** As the live runner (processors/runner.ts). */
const TICK_EVERY_MS = 5_000;

export class Replay<S> {
  private readonly partitions = new Map<number, PartitionReplay<S>>();
  readonly counts: ReplayCounts = { stepped: 0, late: 0, tenantMismatch: 0 };

  /**
   * `emptyInputs`: per partition, the input topics with nothing to read there (caught up from the start).
   */
  constructor(
    private readonly processor: KeyedProcessor<S>,
    private readonly emit: (output: ReplayOutput) => void,
    private readonly emptyInputs: (partition: number) => readonly TopicKey[] = () => [],
  ) {}

  /** Adds one fetched batch of a topic-partition (offset order) and steps what the merge releases. Records at or below an offset already pushed are dropped (redelivery). */
  push(partition: number, topic: TopicKey, records: readonly ReplayRecord[]): void {
    const p = this.partition(partition);
    const last = p.pushed.get(topic) ?? -1n;
    const fresh = records.filter((r) => BigInt(r.offset) > last);
    if (fresh.length === 0) return;
    p.pushed.set(topic, BigInt(fresh.at(-1)!.offset));
    p.merger.push(
      topic,
      fresh.map((r) => ({
        topic,
        // As the live runner: merged per (session, tenant), looked up by session.
        session: mergeKeyOf(r.session, (r.value as { tenant_id?: unknown }).tenant_id),
        offset: r.offset,
        ts: r.ts,
        payload: { value: r.value, appendTs: r.appendTs ?? r.ts, session: r.session, owner: r.owner },
        barrier: !!this.processor.isBarrier?.(topic, r.value),
      })),
      false,
    );
    this.process(p);
  }

  /** The topic-partition has been read to its end: it holds no session back any more. */
  reached(partition: number, topic: TopicKey): void {
    const p = this.partition(partition);
    p.done.add(topic);
    this.process(p);
  }

  /** Every input was read to its end: releases and steps everything still held. */
  finish(): void {
    for (const p of this.partitions.values()) {
      for (const t of this.processor.inputs) p.done.add(t);
      this.process(p);
    }
  }

  /** Sessions open (started, not ended) right now, over all partitions. */
  get openSessions(): number {
    let n = 0;
    for (const p of this.partitions.values()) for (const s of p.sessions.values()) if (s.state !== null) n += 1;
    return n;
  }

  private partition(n: number): PartitionReplay<S> {
    let p = this.partitions.get(n);
    if (!p) {
      // maxHeld as the live runner's: past it the oldest records go first and may then count as late.
      const merger = new PartitionMerger<{ value: unknown; appendTs: number; session: string; owner?: string }>(
        this.processor.inputs,
      );
      p = {
        merger,
        done: new Set(this.emptyInputs(n)),
        pushed: new Map(),
        sessions: new Map(),
        clock: -Infinity,
        lastTickClock: -Infinity,
      };
      this.partitions.set(n, p);
    }
    return p;
  }

  /**
   * The live runner's processReleased, minus I/O: step released records (refusing another tenant's),
   * then evict sessions idle by append time. A finished session keeps only its owner, at once, as in
   * the live runner.
   */
  private process(p: PartitionReplay<S>): void {
    // The live runner's freshness check: inputs at their end are re-marked caught up now, so a barrier
    // (SessionEnded) that arrived since is not held back by them.
    for (const t of p.done) p.merger.markCaughtUp(t);
    const released = p.merger.release();
    if (released.length === 0) return;
    for (const item of released) {
      const { value, appendTs, session, owner } = item.payload;
      if (appendTs > p.clock) p.clock = appendTs;
      const tenant = (value as { tenant_id?: unknown }).tenant_id;
      const s = p.sessions.get(session) ?? { state: null, owner: owner ?? tenant, seenAt: appendTs };
      if (s.owner !== tenant) {
        this.counts.tenantMismatch += 1;
        continue;
      }
      const r = this.processor.step(s.state ?? this.processor.initial(session), item.topic as TopicKey, value);
      // As the live runner: a finished session keeps only its owner, at once.
      s.state = this.processor.finished(r.state) ? null : r.state;
      s.seenAt = appendTs;
      p.sessions.set(session, s);
      this.counts.stepped += 1;
      this.out(r.outputs);
    }
    if (p.clock - p.lastTickClock >= TICK_EVERY_MS) {
      p.lastTickClock = p.clock;
      const idleAfter = this.processor.idleAfterMs ?? Infinity;
      for (const s of p.sessions.values()) {
        if (s.state === null || !this.processor.evict || p.clock - s.seenAt < idleAfter) continue;
        const r = this.processor.evict(s.state);
        s.state = this.processor.finished(r.state) ? null : r.state;
        this.out(r.outputs);
      }
    }
    // Ended sessions keep their owner only (the live runner remembers it for days; a replay's
    // input is finite, so it keeps it to the end).
  }

  private out(outputs: Emission[]): void {
    for (const o of outputs) {
      if ('late' in o) this.counts.late += 1;
      else this.emit(o);
    }
  }
}
