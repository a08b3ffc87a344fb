import type { Kafka, KafkaMessage } from 'kafkajs';

/** Offsets `[from, to)` of one partition to read. */
export interface PartitionRange {
  partition: number;
  from: string;
  to: string;
}

/** Offsets `[from, to)` of one partition of one topic to read. */
export interface TopicPartitionRange extends PartitionRange {
  topic: string;
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
  return readTopicRanges(
    kafka,
    ranges.map((r) => ({ topic, ...r })),
    (_topic, partition, messages) => onBatch(partition, messages),
    {
      ...opts,
      groupId: opts.groupId ?? `${topic}.range.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}`,
    },
  );
}

/**
 * `readRanges` over several topics with one consumer, so they are fetched side by side (e.g. the
 * co-partitioned inputs of an event-time merge). Batches of one topic-partition come in offset order;
 * batches of different ones interleave as fetched. `onReached(topic, partition)` is called once a
 * range has been read to its end (after its last batch), ranges that are empty never.
 *
 * Flow control: Kafka fetches by bytes, not by event time, so side by side topics drift apart (10 KB
 * of one topic may span minutes, of another seconds). After each batch, a topic-partition for which
 * `ahead(topic, partition)` holds is paused, and resumed once it no longer holds; one that is not
 * ahead always keeps going (if every open range were ahead, all are resumed), so reading never stalls.
 */
export async function readTopicRanges(
  kafka: Kafka,
  ranges: readonly TopicPartitionRange[],
  onBatch: (topic: string, partition: number, messages: KafkaMessage[]) => Promise<void>,
  opts: {
    signal?: AbortSignal;
    groupId?: string;
    onReached?: (topic: string, partition: number) => void;
    ahead?: (topic: string, partition: number) => boolean;
  } = {},
): Promise<{ aborted: boolean }> {
  const todo = ranges.filter((r) => BigInt(r.from) < BigInt(r.to));
  if (todo.length === 0 || opts.signal?.aborted) return { aborted: !!opts.signal?.aborted };
  const keyOf = (topic: string, partition: number) => `${partition}@${topic}`;
  const byKey = new Map(
    todo.map((r) => [keyOf(r.topic, r.partition), { ...r, from: BigInt(r.from), to: BigInt(r.to) }]),
  );
  const pending = new Set(byKey.keys());
  const topics = [...new Set(todo.map((r) => r.topic))];

  const consumer = kafka.consumer({
    groupId: opts.groupId ?? `${topics[0]}.range.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}`,
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

  /** Ranges paused by flow control (still pending). */
  const heldBack = new Set<string>();
  const flow = () => {
    if (!opts.ahead || stopped) return;
    for (const key of pending) {
      const r = byKey.get(key)!;
      const ahead = opts.ahead(r.topic, r.partition);
      if (ahead && !heldBack.has(key)) {
        heldBack.add(key);
        consumer.pause([{ topic: r.topic, partitions: [r.partition] }]);
      } else if (!ahead && heldBack.has(key)) {
        heldBack.delete(key);
        consumer.resume([{ topic: r.topic, partitions: [r.partition] }]);
      }
    }
    if (heldBack.size > 0 && heldBack.size === pending.size) {
      for (const key of heldBack) {
        const r = byKey.get(key)!;
        consumer.resume([{ topic: r.topic, partitions: [r.partition] }]);
      }
      heldBack.clear();
    }
  };

  const reached = (topic: string, partition: number, lastOffset: string) => {
    const key = keyOf(topic, partition);
    const r = byKey.get(key);
    if (!r || !pending.has(key) || BigInt(lastOffset) + 1n < r.to) return;
    pending.delete(key);
    heldBack.delete(key);
    consumer.pause([{ topic, partitions: [partition] }]);
    if (!stopped) opts.onReached?.(topic, partition);
    if (pending.size === 0) finish(false);
    else flow();
  };

  try {
    const others = await otherPartitions(kafka, topics, todo);
    await consumer.connect();
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) =>
      reached(payload.topic, payload.partition, payload.lastOffset),
    );
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      stopped = true;
      fail(payload.error);
    });
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      // The fetch position moves only past resolved offsets: without it kafkajs fetches the same batch again.
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        const key = keyOf(batch.topic, batch.partition);
        const r = byKey.get(key);
        if (stopped || !r || !pending.has(key)) return;
        const inRange = batch.messages.filter((m) => {
          const o = BigInt(m.offset);
          return o >= r.from && o < r.to;
        });
        try {
          if (inRange.length) await onBatch(batch.topic, batch.partition, inRange);
        } catch (err) {
          // The sink failed: stop here (no kafkajs retry of a half-written batch) and report it.
          stopped = true;
          fail(err);
          return;
        }
        reached(batch.topic, batch.partition, batch.lastOffset());
        flow();
      },
    });
    for (const r of byKey.values())
      consumer.seek({ topic: r.topic, partition: r.partition, offset: r.from.toString() });
    // Seek and pause apply from the next fetch; a batch fetched before them is filtered above.
    for (const [topic, partitions] of others) if (partitions.length) consumer.pause([{ topic, partitions }]);
    return { aborted: await done };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await consumer.disconnect();
  }
}

/** Per topic, its partitions without a range to read (paused, so nothing is fetched from them). */
async function otherPartitions(
  kafka: Kafka,
  topics: readonly string[],
  wanted: readonly TopicPartitionRange[],
): Promise<Map<string, number[]>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out = new Map<string, number[]>();
    for (const topic of topics) {
      const offsets = await admin.fetchTopicOffsets(topic);
      const mine = new Set(wanted.filter((r) => r.topic === topic).map((r) => r.partition));
      out.set(
        topic,
        offsets.map((o) => o.partition).filter((p) => !mine.has(p)),
      );
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
