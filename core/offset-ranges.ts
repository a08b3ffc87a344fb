import { Partitioners, type Kafka } from 'kafkajs';
import type { PartitionRange } from './read-range';

/**
 * Which offsets of a topic hold a time range or a session: the ranges `readRanges` (read-range.ts)
 * then reads. Shared by the export (projections/replay) and the rescore (processors/rescore), which
 * is why it lives in the core and not in either of them.
 */

/**
 * How far before `from` the scan starts, in record time: offsets-for-times looks at the time the
 * producer stamped on the record (Kafka CreateTime, the wall clock when it was sent), while `from` is
 * event time (the device clock). An event is published after it happened, so its record time is at
 * or after its `ts`; the margin covers device clocks running up to this much ahead of the producer's.
 */
export const CLOCK_SKEW_MS = 60_000;

/** The partition the producers put a session's events in: kafkajs's default (murmur2) partitioner on the key. */
export function partitionOfKey(key: string, partitionCount: number): number {
  const partitioner = Partitioners.DefaultPartitioner();
  return partitioner({
    topic: '',
    partitionMetadata: Array.from({ length: partitionCount }, (_, i) => ({
      partitionId: i,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    })),
    message: { key: Buffer.from(key, 'utf8'), value: null },
  });
}

/**
 * Where to read: per partition, from the first offset whose record time is at or after `from` (minus
 * the clock margin; the first offset without `from`) to the end offset the partition has now, so a
 * reader terminates however fast the topic grows. With `session`, only that session's partition.
 */
export async function rangesOf(
  kafka: Kafka,
  topic: string,
  opts: { from?: number; session?: string },
): Promise<PartitionRange[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const starts =
      opts.from === undefined
        ? new Map(ends.map((e) => [e.partition, e.low]))
        : new Map(
            (await admin.fetchTopicOffsetsByTimestamp(topic, opts.from - CLOCK_SKEW_MS)).map((o) => [
              o.partition,
              o.offset,
            ]),
          );
    const only = opts.session === undefined ? undefined : partitionOfKey(opts.session, ends.length);
    return ends
      .filter((e) => only === undefined || e.partition === only)
      .map((e) => {
        const start = BigInt(starts.get(e.partition) ?? e.low);
        const low = BigInt(e.low);
        return { partition: e.partition, from: (start < low ? low : start).toString(), to: e.high };
      })
      .sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect();
  }
}
