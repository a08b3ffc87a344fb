import type { Kafka, KafkaMessage } from 'kafkajs';

/** Offsets `[from, to)` of one partition to read. */
export interface PartitionRange {
  partition: number;
  from: string;
  to: string;
}

/**
 * Reads the given offset ranges of a topic (read_committed) and hands each batch, in offset order per
 * partition, to `onBatch`; resolves once every range is read to its end (or `signal` aborts).
 *
 * Memory stays bounded: the next batch is fetched only after `onBatch` settles, so a slow sink (a
 * stream waiting for `drain`, a database transaction) holds the consumer back. Ends may be
 * transaction markers that no message reports, so progress is also tracked through
 * END_BATCH_PROCESS, as `readToEnd` does. kafkajs has no manual assignment: this uses a throw-away
 * consumer group without committed offsets, seeks each partition to its start and pauses the others.
 */
export async function readRanges(
  kafka: Kafka,
  topic: string,
  ranges: readonly PartitionRange[],
  onBatch: (partition: number, messages: KafkaMessage[]) => Promise<void>,
  opts: { signal?: AbortSignal; groupId?: string } = {},
): Promise<{ aborted: boolean }> {
  const todo = ranges.filter((r) => BigInt(r.from) < BigInt(r.to));
  if (todo.length === 0 || opts.signal?.aborted) return { aborted: !!opts.signal?.aborted };
  const byPartition = new Map(todo.map((r) => [r.partition, { from: BigInt(r.from), to: BigInt(r.to) }]));
  const pending = new Set(byPartition.keys());

  const consumer = kafka.consumer({
    groupId: opts.groupId ?? `${topic}.range.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}`,
    readUncommitted: false,
    allowAutoTopicCreation: false,
  });
  let finish!: (aborted: boolean) => void;
  let fail!: (err: unknown) => void;
  const done = new Promise<boolean>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  done.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
  let stopped = false;
  const onAbort = () => {
    stopped = true;
    finish(true);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const reached = (partition: number, lastOffset: string) => {
    const r = byPartition.get(partition);
    if (!r || !pending.has(partition) || BigInt(lastOffset) + 1n < r.to) return;
    pending.delete(partition);
    consumer.pause([{ topic, partitions: [partition] }]);
    if (pending.size === 0) finish(false);
  };

  try {
    const others = await otherPartitions(kafka, topic, [...byPartition.keys()]);
    await consumer.connect();
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => reached(payload.partition, payload.lastOffset));
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      stopped = true;
      fail(payload.error);
    });
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch }) => {
        const r = byPartition.get(batch.partition);
        if (stopped || !r || !pending.has(batch.partition)) return;
        const inRange = batch.messages.filter((m) => {
          const o = BigInt(m.offset);
          return o >= r.from && o < r.to;
        });
        try {
          if (inRange.length) await onBatch(batch.partition, inRange);
        } catch (err) {
          // The sink failed: stop here (no kafkajs retry of a half-written batch) and report it.
          stopped = true;
          fail(err);
          return;
        }
        reached(batch.partition, batch.lastOffset());
      },
    });
    for (const [partition, r] of byPartition) consumer.seek({ topic, partition, offset: r.from.toString() });
    // Seek and pause apply from the next fetch; a batch fetched before them is filtered above.
    if (others.length) consumer.pause([{ topic, partitions: others }]);
    return { aborted: await done };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await consumer.disconnect();
  }
}

async function otherPartitions(kafka: Kafka, topic: string, wanted: number[]): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.map((o) => o.partition).filter((p) => !wanted.includes(p));
  } finally {
    await admin.disconnect();
  }
}
