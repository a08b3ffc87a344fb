import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Pool, PoolClient } from '../../core/db';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { VigilError } from '../../core/errors';
import { SessionOwners } from '../../core/session-owners';
import { findOffenders } from '../../core/data-error';
import type { TsWindow } from '../../schemas/rules';
import { admit } from '../screen';
import { readRanges, type PartitionRange } from '../../core/read-range';
import type { TopicKey, TopicNames } from '../../schemas/catalogue';
import { readModels } from '../index';
import type { ProjectedRecord, ReadModel } from '../model';
import { CLOCK_SKEW_MS } from '../replay/export';
import {
  copyOlderSql,
  copySwapSql,
  createShadowSql,
  ident,
  indexRenames,
  rebuildProjectionOf,
  shadowPatternOf,
  renameIndexSql,
  renameSwapSql,
  searchPathSql,
  sessionsSwapSql,
  shadowSchemaOf,
} from './sql';

export interface RebuildDeps {
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

export interface RebuildOptions {
  /** Event time (epoch ms): keep the live rows older than this and replay only from here. */
  from?: number;
  /**
   * Rebuild even when Kafka no longer holds part of the history (see `truncatedPartitions`): the rows
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

/** A partition whose records before `logStartOffset` are gone (retention or deleteRecords). */
export interface TruncatedPartition {
  topic: string;
  partition: number;
  logStartOffset: string;
  /** Offsets deleted, an upper bound on the records (transaction markers take offsets too). */
  lost: string;
}

/** After catching up, the swap transaction replays the rest itself when at most this many offsets remain. */
const SWAP_GAP = 2_000;
const MAX_CATCH_UP_ROUNDS = 5;

type Positions = Map<string, Map<number, bigint>>;

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
 *    replaced (drop + `SET SCHEMA public` + canonical index names; or TRUNCATE + INSERT for
 *    hypertables and tables views depend on, such as `fatigue_scores` under `fatigue_scores_1m`),
 *    the owned `sessions` columns upserted. Readers wait on the table lock for the moment of the swap
 *    and then read the new table; nobody sees a half state. The live checkpoints are not moved:
 *    the rebuilt state is exactly what they say.
 * The shadow schema and the rebuild's checkpoints are dropped whatever happens. One rebuild per
 * model at a time (advisory lock): a second one fails with REBUILD_RUNNING.
 *
 * A rebuild replays only what Kafka still holds and then replaces the tables, so it refuses, before
 * touching anything, with HISTORY_TRUNCATED (details: `truncated`, per partition) when a partition's
 * history is missing (`truncatedPartitions`), unless `allowTruncated`.
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
  const t0 = performance.now();
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const shadow = shadowSchemaOf(model.name, runId);
  const ownName = rebuildProjectionOf(model.name, runId);
  const topics = model.topics.map((k) => deps.topics[k]);
  const keyOf = new Map<string, TopicKey>(model.topics.map((k) => [deps.topics[k], k]));
  const tables = model.writes.tables.map((t) => t.name);
  const stats = { applied: 0, undecodable: 0, refused: 0, dataErrors: 0 };
  const screening = { serde: deps.serde, owners: new SessionOwners(deps.pool), tsWindow: deps.tsWindow };
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
      const { positions: mine, truncated } = await startPositions(deps.kafka, topics, opts.from);
      if (truncated.length && !opts.allowTruncated) throw historyTruncated(model.name, truncated, opts.from);
      if (truncated.length)
        deps.log.warn({ model: model.name, truncated }, 'rebuild: history missing, rebuilding anyway');
      await dropStale(db, deps.log, model.name);
      await prepareShadow(db, model, shadow, opts.from);

      /** Decodes a batch and runs the model's statements in the shadow, on `c` (inside its transaction). */
      const apply = async (c: PoolClient, topic: string, partition: number, messages: KafkaMessage[]) => {
        // The live runners' decoding and screen: the same owners (session_owners is never rebuilt),
        // rules and window; what they dead-lettered is skipped here.
        const key = keyOf.get(topic)!;
        const { good, refused } = await admit(screening, key, messages);
        for (const r of refused) stats[r.phase === 'decode' ? 'undecodable' : 'refused'] += 1;
        const records: ProjectedRecord[] = good.map((g) => ({
          topic: key,
          partition,
          offset: g.message.offset,
          value: g.value,
        }));
        await c.query(searchPathSql(shadow));
        // Data errors (the live runner dead-lettered those records): found by splitting in savepoints.
        const offenders = await findOffenders(records, async (part) => {
          await c.query('SAVEPOINT vigil_part');
          try {
            for (const s of model.project(part)) await c.query(s.text, s.values);
          } catch (err) {
            await c.query('ROLLBACK TO SAVEPOINT vigil_part');
            throw err;
          } finally {
            await c.query('RELEASE SAVEPOINT vigil_part').catch(() => {});
          }
        });
        stats.dataErrors += offenders.length;
        stats.applied += records.length - offenders.length;
      };

      /** Replays every partition from `mine` to `to` in the shadow, one transaction per batch. */
      const replay = async (to: Positions, phase: 'replay' | 'catch-up') => {
        progress(phase, gapOf(mine, to));
        for (const topic of topics) {
          const ranges = rangesOf(mine.get(topic)!, to.get(topic)!);
          const { aborted } = await readRanges(
            deps.kafka,
            topic,
            ranges,
            async (partition, messages) => {
              const next = BigInt(messages[messages.length - 1]!.offset) + 1n;
              await inTransaction(db, async (c) => {
                await apply(c, topic, partition, messages);
                await c.query(
                  `INSERT INTO public.projection_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
                  [ownName, topic, partition, next.toString()],
                );
              });
              mine.get(topic)!.set(partition, next);
              progress(phase, gapOf(mine, to));
            },
            { signal: opts.signal },
          );
          if (aborted) throw new VigilError('REBUILD_ABORTED', `rebuild of ${model.name} stopped before the swap`);
          // Ranges end at the live checkpoint, which may lie past the last record (transaction markers).
          for (const r of ranges) mine.get(topic)!.set(r.partition, BigInt(r.to));
        }
      };

      await ensureCheckpointRows(deps.kafka, db, model, topics);
      await replay(await liveCheckpoints(db, model.name, topics, mine), 'replay');
      for (let round = 0; round < MAX_CATCH_UP_ROUNDS; round++) {
        const live = await liveCheckpoints(db, model.name, topics, mine);
        if (gapOf(mine, live) <= SWAP_GAP) break;
        await replay(live, 'catch-up');
      }
      for (const t of [...tables, 'sessions']) await db.query(`ANALYZE ${ident(shadow)}.${ident(t)}`);

      progress('swap', 0);
      const swapped: RebuildResult['swapped'] = {};
      const at = await inTransaction(db, async (c) => {
        const { rows } = await c.query<{ topic: string; partition: number; next_offset: string }>(
          `SELECT topic, partition, next_offset FROM public.projection_checkpoints
           WHERE projection = $1 AND topic = ANY($2) ORDER BY topic, partition FOR UPDATE`,
          [model.name, topics],
        );
        const live = positionsOf(rows, topics, mine);
        for (const topic of topics) {
          const ranges = rangesOf(mine.get(topic)!, live.get(topic)!);
          const { aborted } = await readRanges(deps.kafka, topic, ranges, (p, m) => apply(c, topic, p, m), {
            signal: opts.signal,
          });
          if (aborted) throw new VigilError('REBUILD_ABORTED', `rebuild of ${model.name} stopped during the swap`);
        }
        await c.query('SET LOCAL search_path TO public');
        for (const t of tables) swapped[t] = await swapTable(c, shadow, t);
        if (model.writes.sessionColumns.length > 0) {
          await c.query(sessionsSwapSql(shadow, model.writes.sessionColumns, await defaultsOf(c, 'sessions')));
          swapped.sessions = 'upsert';
        }
        return Object.fromEntries(
          topics.map((t) => [t, Object.fromEntries([...live.get(t)!].map(([p, o]) => [p, o.toString()]))]),
        );
      });
      const seconds = (performance.now() - t0) / 1000;
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
      await cleanUp(db, deps.log, shadow, ownName);
      await guard.query(`SELECT pg_advisory_unlock(hashtext($1))`, [`vigil.rebuild.${model.name}`]);
    }
  } finally {
    guard.release();
  }
}

/** Runs `fn` in one transaction on `db`; rolls back on any error. */
async function inTransaction<T>(db: PoolClient, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  await db.query('BEGIN');
  try {
    const result = await fn(db);
    await db.query('COMMIT');
    return result;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** The shadow schema and, with `from`, the live rows older than it and what the model derives from them. */
async function prepareShadow(db: PoolClient, model: ReadModel, shadow: string, from?: number): Promise<void> {
  await inTransaction(db, async (c) => {
    for (const sql of createShadowSql(shadow, [...model.writes.tables.map((t) => t.name), 'sessions'])) {
      await c.query(sql);
    }
    if (from === undefined) return;
    for (const t of model.writes.tables) {
      if (t.timeColumn) {
        await c.query(copyOlderSql(shadow, t.name, t.timeColumn, await columnsOf(c, t.name)), [new Date(from)]);
      }
    }
    await c.query(searchPathSql(shadow));
    for (const sql of model.writes.seed) await c.query(sql);
  });
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
async function startPositions(
  kafka: Kafka,
  topics: readonly string[],
  from?: number,
): Promise<{ positions: Positions; truncated: TruncatedPartition[] }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out: Positions = new Map();
    const truncated: TruncatedPartition[] = [];
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const byTime =
        from === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(topic, from - CLOCK_SKEW_MS);
      out.set(
        topic,
        new Map(
          ends.map((e) => {
            const low = BigInt(e.low);
            const t = byTime?.find((o) => o.partition === e.partition)?.offset;
            const start = t !== undefined && BigInt(t) > low ? BigInt(t) : low;
            if (low > 0n && start === low) {
              truncated.push({ topic, partition: e.partition, logStartOffset: low.toString(), lost: low.toString() });
            }
            return [e.partition, start];
          }),
        ),
      );
    }
    return { positions: out, truncated };
  } finally {
    await admin.disconnect();
  }
}

/** The refusal of a rebuild over missing history: which partitions, how much is gone, how to go on. */
function historyTruncated(model: string, truncated: readonly TruncatedPartition[], from?: number): VigilError {
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

/**
 * A checkpoint row (next_offset 0, which is what a missing row means) for every partition of the
 * model's topics, so the swap can lock them all: a partition the live runner had not reached yet
 * could otherwise get its first row, and records, past the lock.
 */
async function ensureCheckpointRows(
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

async function liveCheckpoints(
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

function rangesOf(from: Map<number, bigint>, to: Map<number, bigint>): PartitionRange[] {
  return [...from].map(([partition, f]) => ({
    partition,
    from: f.toString(),
    to: (to.get(partition) ?? 0n).toString(),
  }));
}

function gapOf(from: Positions, to: Positions): number {
  let gap = 0n;
  for (const [t, parts] of from) {
    for (const [p, f] of parts) {
      const d = (to.get(t)?.get(p) ?? 0n) - f;
      if (d > 0n) gap += d;
    }
  }
  return Number(gap);
}

/** Swaps one owned table in (see `rebuildProjection`); says how. */
export async function swapTable(c: PoolClient, shadow: string, table: string): Promise<'rename' | 'copy'> {
  if (await mustCopy(c, table)) {
    for (const sql of copySwapSql(shadow, table, await columnsOf(c, table))) await c.query(sql);
    return 'copy';
  }
  const live = await indexesOf(c, 'public', table);
  const mine = await indexesOf(c, shadow, table);
  const renames = indexRenames(live, mine);
  for (const sql of renameSwapSql(shadow, table)) await c.query(sql);
  for (const r of renames) await c.query(renameIndexSql(r.from, r.to));
  return 'rename';
}

/** A hypertable, or a table a view (e.g. `fatigue_scores_1m`) depends on, cannot be dropped: copy into it. */
async function mustCopy(c: PoolClient, table: string): Promise<boolean> {
  const views = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
     WHERE d.refobjid = $1::regclass AND r.ev_class <> d.refobjid`,
    [`public.${table}`],
  );
  if (views.rows[0]!.n > 0) return true;
  const ts = await c.query<{ present: boolean }>(
    `SELECT to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL AS present`,
  );
  if (!ts.rows[0]!.present) return false;
  const hyper = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM _timescaledb_catalog.hypertable WHERE schema_name = 'public' AND table_name = $1`,
    [table],
  );
  return hyper.rows[0]!.n > 0;
}

async function columnsOf(c: PoolClient, table: string): Promise<string[]> {
  const { rows } = await c.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => r.column_name);
}

async function defaultsOf(c: PoolClient, table: string): Promise<Record<string, string>> {
  const { rows } = await c.query<{ column_name: string; column_default: string | null }>(
    `SELECT column_name, column_default FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`,
    [table],
  );
  return Object.fromEntries(rows.map((r) => [r.column_name, r.column_default ?? 'NULL']));
}

async function indexesOf(c: PoolClient, schema: string, table: string): Promise<{ name: string; def: string }[]> {
  const { rows } = await c.query<{ name: string; def: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = $1 AND t.relname = $2 ORDER BY i.relname`,
    [schema, table],
  );
  return rows;
}

/**
 * Drops what an earlier run of this model left behind when its process died (kill -9) before its own
 * clean-up. Called under the model's advisory lock, so no other run of it is using them.
 */
async function dropStale(db: PoolClient, log: Logger, model: string): Promise<void> {
  const { rows } = await db.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname ~ $1`, [
    shadowPatternOf(model),
  ]);
  for (const r of rows) {
    log.warn({ shadow: r.nspname }, 'rebuild: dropping the shadow schema an interrupted rebuild left');
    await db.query(`DROP SCHEMA IF EXISTS ${ident(r.nspname)} CASCADE`);
  }
  await db.query(`DELETE FROM public.projection_checkpoints WHERE starts_with(projection, $1)`, [
    rebuildProjectionOf(model, ''),
  ]);
}

/** Drops the shadow (whatever is left of it) and the rebuild's checkpoints. */
async function cleanUp(db: PoolClient, log: Logger, shadow: string, ownName: string): Promise<void> {
  try {
    await db.query(`DROP SCHEMA IF EXISTS ${ident(shadow)} CASCADE`);
    await db.query(`DELETE FROM public.projection_checkpoints WHERE projection = $1`, [ownName]);
  } catch (err) {
    log.warn({ err, shadow }, 'rebuild: could not drop the shadow schema; drop it by hand');
  }
}
