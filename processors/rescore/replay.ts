import type { TopicKey } from '../../schemas/catalogue';
import type { Emission, KeyedProcessor } from '../keyed';
import { PartitionDriver } from '../partition-driver';

/**
 * Replays recorded input through a KeyedProcessor the way the live ProcessorRunner feeds it, without
 * Kafka, transactions or a changelog: per partition number, the same PartitionDriver
 * (processors/partition-driver.ts: event-time merge, trust rules, applied-offset de-duplication,
 * step, append-time eviction and owner memory) as the live runner, so the two agree by construction.
 * Pure: no clock, no I/O; the same records give the same outputs per session whatever the batch
 * boundaries (the merge's contract).
 *
 * Unlike the live runner, the inputs are finite: the caller says when a topic-partition has been read
 * to its end (`reached`), and `finish()` releases whatever is still held. Sessions that did not end
 * within the input are left open (their windows up to the watermark are scored, as live would have
 * at that point); nothing is flushed at the end of the input. Memory: the records the merge holds
 * back, plus the state of each open session (an ended session keeps only its owner and offsets, as in
 * the live runner).
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
  /** Inputs dropped as copies of one the session held (a producer's resend; the live runner counts them too). */
  duplicates: number;
  /** Records naming a session another tenant owns (the live runner dead-letters them). */
  tenantMismatch: number;
}

interface PartitionReplay<S> {
  driver: PartitionDriver<S, undefined>;
  /** Inputs read to their end on this partition (their end is final: the range stops at the start's end offsets). */
  done: Set<TopicKey>;
}

export class Replay<S> {
  private readonly partitions = new Map<number, PartitionReplay<S>>();
  readonly counts: ReplayCounts = { stepped: 0, late: 0, duplicates: 0, tenantMismatch: 0 };

  /**
   * `emptyInputs`: per partition, the input topics with nothing to read there (caught up from the start).
   */
  constructor(
    private readonly processor: KeyedProcessor<S>,
    private readonly emit: (output: ReplayOutput) => void,
    private readonly emptyInputs: (partition: number) => readonly TopicKey[] = () => [],
  ) {}

  /**
   * Adds one fetched batch of a topic-partition (offset order) and steps what the merge releases. A
   * record at or below its session's last applied offset of the topic is skipped (a redelivery), as
   * the live runner skips a re-read.
   */
  push(partition: number, topic: TopicKey, records: readonly ReplayRecord[]): void {
    const p = this.partition(partition);
    p.driver.push(
      topic,
      records.map((r) => ({
        offset: r.offset,
        session: r.session,
        ts: r.ts,
        appendTs: r.appendTs ?? r.ts,
        value: r.value,
        ...(r.owner === undefined ? {} : { owner: r.owner }),
        meta: undefined,
      })),
      false,
    );
    this.drive(p);
  }

  /** The topic-partition has been read to its end: it holds no session back any more. */
  reached(partition: number, topic: TopicKey): void {
    const p = this.partition(partition);
    p.done.add(topic);
    this.drive(p);
  }

  /** Every input was read to its end: releases and steps everything still held. */
  finish(): void {
    for (const p of this.partitions.values()) {
      for (const t of this.processor.inputs) p.done.add(t);
      this.drive(p);
    }
  }

  /** Sessions open (started, not ended) right now, over all partitions. */
  get openSessions(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.driver.openSessions;
    return n;
  }

  private partition(n: number): PartitionReplay<S> {
    let p = this.partitions.get(n);
    if (!p) {
      p = {
        driver: new PartitionDriver<S, undefined>(this.processor, { partition: n }),
        done: new Set(this.emptyInputs(n)),
      };
      this.partitions.set(n, p);
    }
    return p;
  }

  private drive(p: PartitionReplay<S>): void {
    // The live runner's freshness check: inputs at their end are re-marked caught up now, so a barrier
    // (SessionEnded) that arrived since is not held back by them.
    for (const t of p.done) p.driver.markCaughtUp(t);
    const out = p.driver.drive();
    this.counts.stepped += out.stepped;
    this.counts.late += out.late.length;
    this.counts.duplicates += out.duplicates;
    this.counts.tenantMismatch += out.refused.filter((r) => r.error.code === 'TENANT_MISMATCH').length;
    for (const { topic, value } of out.events) this.emit({ topic, value });
  }
}
