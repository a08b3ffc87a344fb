import type { Kafka } from 'kafkajs';
import type { PoolClient } from '../../core/db';
import type { PartitionRange } from '../../core/read-range';
import type { ReadModel } from '../model';

/**
 * Offsets of a rebuild: positions per topic and partition, the live projection's checkpoints
 * (`public.projection_checkpoints`, read, locked for the swap, completed with missing rows), the
 * rebuild's own checkpoint per batch, and the ranges and gaps between two sets of positions.
 */

/** topic → partition → next offset. */
export type Positions = Map<string, Map<number, bigint>>;

/**
 * A checkpoint row (next_offset 0, which is what a missing row means) for every partition of the
 * model's topics, so the swap can lock them all: a partition the live runner had not reached yet
 * could otherwise get its first row, and records, past the lock.
 */
export async function ensureCheckpointRows(
  kafka: Kafka,
  db: PoolClient,
  model: ReadModel,
  topics: readonly string[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of topics) {
      const partitions = (await admin.fetchTopicOffsets(topic)).map((o) => o.partition);
      await db.query(
        `INSERT INTO public.projection_checkpoints (projection, topic, partition, next_offset)
         SELECT $1, $2, p, 0 FROM unnest($3::int[]) p ON CONFLICT DO NOTHING`,
        [model.name, topic, partitions],
      );
    }
  } finally {
    await admin.disconnect();
  }
}

/** The live projection's checkpoints now, for the partitions of `like`. */
export async function liveCheckpoints(
  db: PoolClient,
  model: string,
  topics: readonly string[],
  like: Positions,
): Promise<Positions> {
  const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>(
    `SELECT topic, partition, next_offset FROM public.projection_checkpoints WHERE projection = $1 AND topic = ANY($2)`,
    [model, topics],
  );
  return positionsOf(rows, topics, like);
}

/**
 * The live projection's checkpoints, locked (`FOR UPDATE`, in a fixed order) until the end of the
 * caller's transaction: the live runner of the model waits meanwhile.
 */
export async function lockLiveCheckpoints(
  client: PoolClient,
  model: string,
  topics: readonly string[],
  like: Positions,
): Promise<Positions> {
  const { rows } = await client.query<{ topic: string; partition: number; next_offset: string }>(
    `SELECT topic, partition, next_offset FROM public.projection_checkpoints
     WHERE projection = $1 AND topic = ANY($2) ORDER BY topic, partition FOR UPDATE`,
    [model, topics],
  );
  return positionsOf(rows, topics, like);
}

/** Records the rebuild's own checkpoint (`<model>@rebuild_<run>`) of one partition. */
export async function saveRebuildCheckpoint(
  client: PoolClient,
  rebuildName: string,
  topic: string,
  partition: number,
  next: bigint,
): Promise<void> {
  await client.query(
    `INSERT INTO public.projection_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
     ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
    [rebuildName, topic, partition, next.toString()],
  );
}

/** Checkpoint rows as positions, 0 for a partition without one. */
function positionsOf(
  rows: readonly { topic: string; partition: number; next_offset: string }[],
  topics: readonly string[],
  like: Positions,
): Positions {
  return new Map(
    topics.map((t) => [
      t,
      new Map(
        [...like.get(t)!.keys()].map((p) => {
          const row = rows.find((r) => r.topic === t && r.partition === p);
          return [p, row ? BigInt(row.next_offset) : 0n];
        }),
      ),
    ]),
  );
}

/** The ranges from one topic's positions to another's, per partition of `from`. */
export function rangesOf(from: Map<number, bigint>, to: Map<number, bigint>): PartitionRange[] {
  return [...from].map(([partition, start]) => ({
    partition,
    from: start.toString(),
    to: (to.get(partition) ?? 0n).toString(),
  }));
}

/** Offsets from `from` to `to`, summed over partitions (behind: 0). */
export function gapOf(from: Positions, to: Positions): number {
  let gap = 0n;
  for (const [topic, partitions] of from) {
    for (const [partition, start] of partitions) {
      const ahead = (to.get(topic)?.get(partition) ?? 0n) - start;
      if (ahead > 0n) gap += ahead;
    }
  }
  return Number(gap);
}
