import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Pool, PoolClient } from '../../core/db';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { VigilError } from '../../core/errors';
import { SessionOwners } from '../../core/session-owners';
import type { TsWindow } from '../../schemas/rules';
import type { TopicKey, TopicNames } from '../../schemas/catalogue';
import { readModels } from '../index';
import { ensureCheckpointRows, gapOf, liveCheckpoints } from './checkpoints';
import { historyTruncated, startPositions, type TruncatedPartition } from './plan';
import { replayTo, type ShadowReplay } from './replay';
import { cleanUp, dropStale, prepareShadow } from './shadow';
import { ident, rebuildProjectionOf, shadowSchemaOf } from './sql';
import { swapIn } from './swap';

interface RebuildDeps {
  kafka: Kafka;
  pool: Pool;
  serde: AvroSerde;
  topics: TopicNames;
  log: Logger;
  /** The live runners' accepted ts window (config.tsWindow): a rebuild refuses what they refused. */
  tsWindow?: TsWindow;
}

export interface RebuildProgress {
  phase: 'prepare' | 'replay' | 'catch-up' | 'swap' | 'done';
  /** Records applied to the shadow so far. */
  applied: number;
  /** Offsets still to replay in this phase (an upper bound on records: transaction markers count too). */
  planned: number;
}

interface RebuildOptions {
  /** Event time (epoch ms): keep the live rows older than this and replay only from here. */
  from?: number;
  /**
   * Rebuild even when Kafka no longer holds part of the history (see plan.ts `startPositions`): the rows
   * of the deleted records are then lost, for every tenant. Default false: HISTORY_TRUNCATED.
   */
  allowTruncated?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: RebuildProgress) => void;
}

export interface RebuildResult {
  model: string;
  /**
   * Records applied to the shadow. What the live runner dead-lettered is skipped the same way:
   * undecodable records, records refused by the screen (rule table, ts window, another tenant's
   * session: `refused`), records whose statements fail with a data error (`dataErrors`).
   */
  applied: number;
  undecodable: number;
  refused: number;
  dataErrors: number;
  seconds: number;
  eventsPerSecond: number;
  /** How each table was swapped in: owned tables by rename or copy, `sessions` (its owned columns) by upsert. */
  swapped: Record<string, 'rename' | 'copy' | 'upsert'>;
  /** The live checkpoints the rebuilt state stands at: topic → partition → next offset. */
  at: Record<string, Record<number, string>>;
  /** Partitions whose history was missing, rebuilt anyway (`allowTruncated`); empty otherwise. */
  truncated: TruncatedPartition[];
}

/** After catching up, the swap transaction replays the rest itself when at most this many offsets remain. */
const SWAP_GAP = 2_000;
const MAX_CATCH_UP_ROUNDS = 5;

/**
 * Rebuilds the PostgreSQL state of read model `name` from its topics while reads and the live
 * projection go on:
 * 1. a shadow schema `vigil_rebuild_<model>_<run>` with empty copies (`LIKE ... INCLUDING ALL`) of the
 *    tables the model owns and of `sessions`; with `from`, the live event rows older than it copied
 *    there and the model's `seed` run (state tables, session counters);
 * 2. every partition replayed from its first offset (with `from`: from offsets-for-times of `from`
 *    minus the clock margin; the overlap is idempotent) up to the live projection's checkpoint, the
 *    model's own statements run with `search_path` = shadow, public, each batch with the rebuild's
 *    checkpoint in one transaction; then catch-up rounds while the live projection moves on;
 * 3. ONE swap transaction: the live checkpoint rows locked (`FOR UPDATE`: the live runner of this
 *    model waits), the last records up to exactly those checkpoints applied, each owned table
 *    replaced (drop + `SET SCHEMA public` + canonical index names; or DELETE + INSERT for
 *    hypertables and tables views depend on, such as `fatigue_scores` under `fatigue_scores_1m`),
 *    the owned `sessions` columns upserted. Readers of a renamed table wait on its lock for the moment
 *    of the swap and then read the new table; readers of a copied one do not wait (DELETE, not
 *    TRUNCATE) and read the old rows until the swap commits; nobody sees a half state. The live checkpoints are not moved:
 *    the rebuilt state is exactly what they say.
 * The shadow schema and the rebuild's checkpoints are dropped whatever happens. One rebuild per
 * model at a time (advisory lock): a second one fails with REBUILD_RUNNING.
 *
 * A rebuild replays only what Kafka still holds and then replaces the tables, so it refuses, before
 * touching anything, with HISTORY_TRUNCATED (details: `truncated`, per partition) when a partition's
 * history is missing (plan.ts `startPositions`), unless `allowTruncated`.
 *
 * The parts: plan.ts (start positions, truncated-history refusal), shadow.ts (shadow schema, seed,
 * clean-up), replay.ts (the replay into the shadow), checkpoints.ts (positions and checkpoint rows),
 * swap.ts (the swap transaction), pg.ts (transaction and catalog reads), sql.ts (the statements).
 */
export async function rebuildProjection(
  deps: RebuildDeps,
  name: string,
  opts: RebuildOptions = {},
): Promise<RebuildResult> {
  const model = readModels[name];
  if (!model) {
    throw new VigilError('NOT_FOUND', `unknown read model ${name}; known: ${Object.keys(readModels).join(', ')}`);
  }
  const startedAt = performance.now();
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const shadow = shadowSchemaOf(model.name, runId);
  const rebuildName = rebuildProjectionOf(model.name, runId);
  const topics = model.topics.map((k) => deps.topics[k]);
  const tables = model.writes.tables.map((t) => t.name);
  const stats = { applied: 0, undecodable: 0, refused: 0, dataErrors: 0 };
  const progress = (phase: RebuildProgress['phase'], planned: number) =>
    opts.onProgress?.({ phase, applied: stats.applied, planned });

  // One connection for the whole rebuild (it holds the advisory lock; the work is sequential).
  let db: PoolClient;
  try {
    db = await deps.pool.connect();
  } catch (cause) {
    throw new VigilError('DATABASE_UNAVAILABLE', 'cannot connect to PostgreSQL', { cause, retriable: true });
  }
  const guard = db;
  try {
    const locked = await guard.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [
      `vigil.rebuild.${model.name}`,
    ]);
    if (!locked.rows[0]!.ok) {
      throw new VigilError('REBUILD_RUNNING', `a rebuild of ${model.name} is already running`);
    }
    try {
      progress('prepare', 0);
      const { positions, truncated } = await startPositions(deps.kafka, topics, opts.from);
      if (truncated.length && !opts.allowTruncated) throw historyTruncated(model.name, truncated, opts.from);
      if (truncated.length)
        deps.log.warn({ model: model.name, truncated }, 'rebuild: history missing, rebuilding anyway');
      await dropStale(db, deps.log, model.name);
      await prepareShadow(db, model, shadow, opts.from);

      const replay: ShadowReplay = {
        kafka: deps.kafka,
        db,
        model,
        shadow,
        rebuildName,
        topics,
        keyOf: new Map<string, TopicKey>(model.topics.map((k) => [deps.topics[k], k])),
        screening: { serde: deps.serde, owners: new SessionOwners(deps.pool), tsWindow: deps.tsWindow },
        stats,
        positions,
        signal: opts.signal,
        progress,
      };
      await ensureCheckpointRows(deps.kafka, db, model, topics);
      await replayTo(replay, await liveCheckpoints(db, model.name, topics, positions), 'replay');
      for (let round = 0; round < MAX_CATCH_UP_ROUNDS; round++) {
        const live = await liveCheckpoints(db, model.name, topics, positions);
        if (gapOf(positions, live) <= SWAP_GAP) break;
        await replayTo(replay, live, 'catch-up');
      }
      for (const t of [...tables, 'sessions']) await db.query(`ANALYZE ${ident(shadow)}.${ident(t)}`);

      progress('swap', 0);
      const { swapped, at } = await swapIn(replay);
      const seconds = (performance.now() - startedAt) / 1000;
      progress('done', 0);
      return {
        model: model.name,
        applied: stats.applied,
        undecodable: stats.undecodable,
        refused: stats.refused,
        dataErrors: stats.dataErrors,
        seconds,
        eventsPerSecond: Math.round(stats.applied / Math.max(seconds, 0.001)),
        swapped,
        at,
        truncated,
      };
    } finally {
      await cleanUp(db, deps.log, shadow, rebuildName);
      await guard.query(`SELECT pg_advisory_unlock(hashtext($1))`, [`vigil.rebuild.${model.name}`]);
    }
  } finally {
    guard.release();
  }
}
