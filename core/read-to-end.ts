import type { IHeaders, Kafka } from 'kafkajs';

export interface ReadRecord {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

/**
 * Reads a topic (read_committed) from its first offset to the end it has when called, and returns
 * the records of the wanted partitions. Works for transactionally written topics, whose ends are
 * transaction markers that no message reports: progress is tracked through END_BATCH_PROCESS
 * instrumentation events, which also fire for fetches holding only markers.
 *
 * kafkajs has no manual partition assignment, so this uses a throw-away consumer group.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  opts: { partitions?: number[]; timeoutMs?: number } = {},
): Promise<ReadRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const wanted = (p: number) => !opts.partitions || opts.partitions.includes(p);
  const pending = new Set(ends.filter((e) => wanted(e.partition) && e.high !== e.low).map((e) => e.partition));
  const records: ReadRecord[] = [];
  if (pending.size === 0) return records;
  const endOf = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  const timeoutMs = opts.timeoutMs ?? 60_000;

  const consumer = kafka.consumer({
    groupId: `${topic}.read.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}`,
    readUncommitted: false,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`reading ${topic}: partitions ${[...pending]} not read to the end in ${timeoutMs} ms`)),
      timeoutMs,
    );
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (pending.has(payload.partition) && BigInt(payload.lastOffset) + 1n >= endOf.get(payload.partition)!) {
        pending.delete(payload.partition);
        if (pending.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      if (!wanted(partition) || BigInt(message.offset) >= endOf.get(partition)!) return;
      records.push({
        partition,
        offset: message.offset,
        key: message.key,
        value: message.value,
        headers: message.headers ?? {},
      });
    },
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
  return records;
}
