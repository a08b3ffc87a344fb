import type { Kafka, KafkaMessage } from 'kafkajs';
import type { PoolClient } from '../../core/db';
import { VigilError } from '../../core/errors';
import { findOffenders } from '../../core/data-error';
import { readRanges } from '../../core/read-range';
import type { TopicKey } from '../../schemas/catalogue';
import type { ProjectedRecord, ReadModel } from '../model';
import { admit } from '../screen';
import { gapOf, rangesOf, saveRebuildCheckpoint, type Positions } from './checkpoints';
import { inTransaction } from './pg';
import { searchPathSql } from './sql';

/**
 * The replay of a read model's topics into its shadow schema: each batch decoded and screened as the
 * live runners do (projections/screen.ts `admit`: what they dead-lettered is skipped and counted),
 * the model's statements run with `search_path` = shadow, public, records with a data error found
 * and skipped in savepoints. `replayTo` commits each batch with the rebuild's own checkpoint and
 * moves `positions`; swap.ts applies the last batches inside the swap transaction with `applyBatch`.
 */

/** What the replay applied and skipped (see `RebuildResult` in rebuild.ts). */
export interface ReplayStats {
  applied: number;
  undecodable: number;
  refused: number;
  dataErrors: number;
}

/** One rebuild's replay: where it reads, what it runs, where it stands. */
export interface ShadowReplay {
  kafka: Kafka;
  /** The rebuild's one connection (it holds the advisory lock). */
  db: PoolClient;
  model: ReadModel;
  shadow: string;
  /** The rebuild's own checkpoint name (`<model>@rebuild_<run>`, sql.ts). */
  rebuildName: string;
  topics: readonly string[];
  keyOf: ReadonlyMap<string, TopicKey>;
  /** The live runners' decoding and screen: the same owners (session_owners is never rebuilt), rules and window. */
  screening: Parameters<typeof admit>[0];
  stats: ReplayStats;
  /** Where the shadow stands: topic → partition → next offset, moved as batches commit. */
  positions: Positions;
  signal?: AbortSignal;
  progress: (phase: 'replay' | 'catch-up', planned: number) => void;
}

/** Decodes a batch and runs the model's statements in the shadow, on `client` (inside its transaction). */
export async function applyBatch(
  replay: ShadowReplay,
  client: PoolClient,
  topic: string,
  partition: number,
  messages: KafkaMessage[],
): Promise<void> {
  const { model, stats } = replay;
  // The live runners' decoding and screen: what they dead-lettered is skipped here.
  const key = replay.keyOf.get(topic)!;
  const { good, refused } = await admit(replay.screening, key, messages);
  for (const r of refused) stats[r.phase === 'decode' ? 'undecodable' : 'refused'] += 1;
  const records: ProjectedRecord[] = good.map((g) => ({
    topic: key,
    partition,
    offset: g.message.offset,
    value: g.value,
  }));
  await client.query(searchPathSql(replay.shadow));
  // Data errors (the live runner dead-lettered those records): found by splitting in savepoints.
  const offenders = await findOffenders(records, async (part) => {
    await client.query('SAVEPOINT vigil_part');
    try {
      for (const statement of model.project(part)) await client.query(statement.text, statement.values);
    } catch (err) {
      await client.query('ROLLBACK TO SAVEPOINT vigil_part');
      throw err;
    } finally {
      await client.query('RELEASE SAVEPOINT vigil_part').catch(() => {});
    }
  });
  stats.dataErrors += offenders.length;
  stats.applied += records.length - offenders.length;
}

/**
 * Replays every partition from `replay.positions` to `to` in the shadow, one transaction per batch
 * (with the rebuild's checkpoint). REBUILD_ABORTED when the signal stops it.
 */
export async function replayTo(replay: ShadowReplay, to: Positions, phase: 'replay' | 'catch-up'): Promise<void> {
  const { positions, db } = replay;
  replay.progress(phase, gapOf(positions, to));
  for (const topic of replay.topics) {
    const ranges = rangesOf(positions.get(topic)!, to.get(topic)!);
    const { aborted } = await readRanges(
      replay.kafka,
      topic,
      ranges,
      async (partition, messages) => {
        const next = BigInt(messages[messages.length - 1]!.offset) + 1n;
        await inTransaction(db, async (client) => {
          await applyBatch(replay, client, topic, partition, messages);
          await saveRebuildCheckpoint(client, replay.rebuildName, topic, partition, next);
        });
        positions.get(topic)!.set(partition, next);
        replay.progress(phase, gapOf(positions, to));
      },
      { signal: replay.signal },
    );
    if (aborted) throw new VigilError('REBUILD_ABORTED', `rebuild of ${replay.model.name} stopped before the swap`);
    // Ranges end at the live checkpoint, which may lie past the last record (transaction markers).
    for (const r of ranges) positions.get(topic)!.set(r.partition, BigInt(r.to));
  }
}
