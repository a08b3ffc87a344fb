import type { Kafka } from 'kafkajs';

/**
 * Reads a compacted changelog topic from the beginning to its current end and returns the latest
 * value per key for the wanted partitions (a null value, a tombstone, removes the key).
 *
 * kafkajs has no manual partition assignment, so this uses a throw-away consumer group; progress is
 * tracked through END_BATCH_PROCESS instrumentation events, which also fire for fetches holding only
 * transaction markers (the changelog is written transactionally, so a partition ends with one).
 */
export async function readChangelog(
  kafka: Kafka,
  topic: string,
  partitions: number[],
  timeoutMs = 60_000,
): Promise<Map<string, Buffer>> {
  const latest = new Map<string, Buffer>();
  if (partitions.length === 0) return latest;
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const pending = new Set(
    ends.filter((e) => partitions.includes(e.partition) && e.high !== e.low && e.high !== '0').map((e) => e.partition),
  );
  if (pending.size === 0) return latest;
  const endOf = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));

  const consumer = kafka.consumer({ groupId: `${topic}.restore.${process.pid}.${Date.now()}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`restoring ${topic}: partitions ${[...pending]} not read to the end in ${timeoutMs} ms`)),
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
      if (!partitions.includes(partition) || !message.key) return;
      const key = message.key.toString();
      if (message.value === null) latest.delete(key);
      else latest.set(key, message.value);
    },
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
  return latest;
}
