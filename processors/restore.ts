import type { Admin, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import { connectTransactional } from '../core/kafka';
import type { Logger } from '../core/logger';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import { readChangelog } from './changelog';
import type { KeyedProcessor } from './keyed';
import { PartitionDriver } from './partition-driver';
import { decodeSnapshot } from './snapshot-codec';

/**
 * One owned partition number of the live ProcessorRunner: the pure driver (merge, sessions, steps,
 * ticks) and the Kafka part around it (its transactional producer, fetch positions, what the next
 * transaction commits).
 */
export interface LivePartition<S> {
  producer: Producer;
  driver: PartitionDriver<S, KafkaMessage>;
  /** Next offset to read per input topic name, as fetched (for the commit when nothing is held). */
  fetched: Map<string, bigint>;
  /** Outputs and touched sessions since the last commit (committed together, see committer.ts). */
  pending: Map<string, Message[]>;
  pendingCount: number;
  dirty: Set<string>;
  /** Wall time of the last commit (commit pacing only; never seen by the driver). */
  lastCommit: number;
  /** A commit of this partition is queued on its chain (the tick does not queue another). */
  flushQueued?: boolean;
  /** Serialises batch processing and timed commits of this partition. */
  chain: Promise<void>;
  /** Set when this state was replaced (reset) or revoked: its queued work must not commit. */
  retired?: boolean;
}

/** The driver of partition `p` as the live runner configures it (snapshots keep offsets by topic name). */
export function liveDriver<S>(
  processor: KeyedProcessor<S>,
  topics: TopicNames,
  p: number,
  ownerMemoryMs?: number,
): PartitionDriver<S, KafkaMessage> {
  return new PartitionDriver<S, KafkaMessage>(processor, {
    partition: p,
    ownerMemoryMs,
    appliedKeyOf: (topic: TopicKey) => topics[topic],
  });
}

export interface RestoreContext<S> {
  kafka: Kafka;
  admin: Admin;
  topics: TopicNames;
  processor: KeyedProcessor<S>;
  groupId: string;
  log: Logger;
  ownerMemoryMs?: number;
  /** Restore duration, for the OpenTelemetry histogram. */
  onRestored?: (ms: number) => void;
}

/** restorePartitions, retried with backoff: brokers answer "not the leader" for a while after topic changes. */
export async function restoreWithRetry<S>(
  ctx: RestoreContext<S>,
  partitions: number[],
  attempts = 8,
): Promise<Map<number, LivePartition<S>>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await restorePartitions(ctx, partitions);
    } catch (err) {
      if (attempt >= attempts) throw err;
      const delay = Math.min(5_000, 250 * 2 ** attempt);
      ctx.log.warn({ err: (err as Error).message, partitions, attempt, delay }, 'restore failed, retrying');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Takes over partition numbers: a transactional producer per partition (`<group>.p<p>`), the
 * sessions from the changelog, and the fetch positions from the committed input offsets.
 */
async function restorePartitions<S>(
  ctx: RestoreContext<S>,
  partitions: number[],
): Promise<Map<number, LivePartition<S>>> {
  const t0 = performance.now();
  const { kafka, admin, topics, processor, groupId } = ctx;
  // Producers first: InitProducerId (connectTransactional: kafkajs's connect() alone does not send it)
  // fences the previous owner of p and completes or aborts its open transaction, so the changelog and
  // offsets read below are final.
  const producers = new Map<number, Producer>();
  const inputs = processor.inputs.map((key) => [key, topics[key]] as const);
  const names = inputs.map(([, name]) => name);
  let snapshots: Map<string, Buffer>;
  let committed: Awaited<ReturnType<Admin['fetchOffsets']>>;
  let ends: Map<string, Awaited<ReturnType<Admin['fetchTopicOffsets']>>>;
  let endsAskedAt: number;
  try {
    for (const p of partitions) producers.set(p, await connectTransactional(kafka, `${groupId}.p${p}`));
    snapshots = await readChangelog(kafka, topics.changelog, partitions);
    committed = await admin.fetchOffsets({ groupId, topics: names });
    endsAskedAt = Date.now();
    ends = new Map(await Promise.all(names.map(async (t) => [t, await admin.fetchTopicOffsets(t)] as const)));
  } catch (err) {
    for (const producer of producers.values()) await producer.disconnect().catch(() => {});
    throw err;
  }

  const out = new Map<number, LivePartition<S>>();
  for (const p of partitions) {
    const driver = liveDriver(processor, topics, p, ctx.ownerMemoryMs);
    const fetched = new Map<string, bigint>();
    for (const [key, topic] of inputs) {
      const o = ends.get(topic)!.find((x) => x.partition === p);
      const c = committed.find((x) => x.topic === topic)?.partitions.find((x) => x.partition === p)?.offset;
      const position = c !== undefined && c !== '-1' ? BigInt(c) : BigInt(o?.low ?? '0');
      fetched.set(topic, position);
      driver.markCaughtUp(key, position >= BigInt(o?.high ?? '0'), undefined, endsAskedAt);
    }
    out.set(p, {
      producer: producers.get(p)!,
      driver,
      fetched,
      pending: new Map(),
      pendingCount: 0,
      dirty: new Set(),
      lastCommit: 0,
      chain: Promise.resolve(),
    });
  }
  for (const [session, bytes] of snapshots) {
    const snapshot = decodeSnapshot(bytes); // binary, or JSON written before binary snapshots
    out.get(snapshot.p)?.driver.restore(session, snapshot);
  }
  const ms = Math.round(performance.now() - t0);
  ctx.onRestored?.(ms);
  ctx.log.info({ partitions, sessions: snapshots.size, ms }, 'state restored');
  return out;
}
