import type { Kafka } from 'kafkajs';
import { VigilError } from '../../core/errors';
import { CLOCK_SKEW_MS } from '../../core/offset-ranges';
import type { Positions } from './checkpoints';

/**
 * A rebuild's plan, before anything is touched: where the replay starts on each partition, and which
 * partitions no longer hold their whole history. A rebuild replays only what Kafka still holds and
 * then replaces the tables, so over missing history it refuses (`historyTruncated`:
 * HISTORY_TRUNCATED) unless told to go on.
 */

/** A partition whose records before `logStartOffset` are gone (retention or deleteRecords). */
export interface TruncatedPartition {
  topic: string;
  partition: number;
  logStartOffset: string;
  /** Offsets deleted, an upper bound on the records (transaction markers take offsets too). */
  lost: string;
}

/**
 * Where the replay starts per topic and partition (the first offset, or offsets-for-times of `from`),
 * and the partitions whose history is missing:
 * - without `from`: the log start offset (`low`) is above 0, so records 0..low-1 are gone;
 * - with `from`: the log start offset is above 0 and offsets-for-times of `from` (minus the clock
 *   margin) lands on it (or on an emptied partition's end): the first record Kafka still holds is not
 *   older than `from`, so deleted records may have been newer. Kafka answers offsets-for-times only
 *   from retained records, so that is all that can be told; time-based retention deletes the oldest
 *   first, which makes it exact there.
 */
export async function startPositions(
  kafka: Kafka,
  topics: readonly string[],
  from?: number,
): Promise<{ positions: Positions; truncated: TruncatedPartition[] }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const positions: Positions = new Map();
    const truncated: TruncatedPartition[] = [];
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const byTime =
        from === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(topic, from - CLOCK_SKEW_MS);
      positions.set(
        topic,
        new Map(
          ends.map((end) => {
            const low = BigInt(end.low);
            const fromOffset = byTime?.find((o) => o.partition === end.partition)?.offset;
            const start = fromOffset !== undefined && BigInt(fromOffset) > low ? BigInt(fromOffset) : low;
            if (low > 0n && start === low) {
              truncated.push({ topic, partition: end.partition, logStartOffset: low.toString(), lost: low.toString() });
            }
            return [end.partition, start];
          }),
        ),
      );
    }
    return { positions, truncated };
  } finally {
    await admin.disconnect();
  }
}

/** The refusal of a rebuild over missing history: which partitions, how much is gone, how to go on. */
export function historyTruncated(model: string, truncated: readonly TruncatedPartition[], from?: number): VigilError {
  const lost = truncated.reduce((n, t) => n + BigInt(t.lost), 0n);
  const byTopic = new Map<string, TruncatedPartition[]>();
  for (const t of truncated) byTopic.set(t.topic, [...(byTopic.get(t.topic) ?? []), t]);
  const where = [...byTopic]
    .map(
      ([topic, ps]) =>
        `${topic} partitions ${ps.map((p) => `${p.partition} (offsets 0-${BigInt(p.logStartOffset) - 1n} deleted)`).join(', ')}`,
    )
    .join('; ');
  return new VigilError(
    'HISTORY_TRUNCATED',
    `refusing to rebuild ${model}: Kafka no longer holds its whole history${from === undefined ? '' : ` since ${new Date(from).toISOString()}`}: ${where}. Up to ${lost} records would be lost for every tenant (the rebuilt tables would replace rows of records Kafka has deleted). Rebuild anyway with --allow-truncated (API: "allowTruncated": true)`,
    { details: { model, lost: lost.toString(), truncated } },
  );
}
