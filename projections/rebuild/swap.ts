import type { PoolClient } from '../../core/db';
import { VigilError } from '../../core/errors';
import { readRanges } from '../../core/read-range';
import { lockLiveCheckpoints, rangesOf } from './checkpoints';
import { columnsOf, defaultsOf, indexesOf, inTransaction } from './pg';
import { applyBatch, type ShadowReplay } from './replay';
import { copySwapSql, indexRenames, renameIndexSql, renameSwapSql, sessionsSwapSql } from './sql';

/**
 * The swap of a rebuild, in ONE transaction (see `rebuildProjection`): the live checkpoint rows
 * locked (the live runner of the model waits), the last records up to exactly those checkpoints
 * applied to the shadow, each owned table swapped in (`swapTable`: rename, or copy into it), the
 * owned `sessions` columns upserted. The live checkpoints are not moved: the rebuilt state is
 * exactly what they say.
 */

/** How each table was swapped in, and the live checkpoints the rebuilt state stands at (topic → partition → next offset). */
interface Swapped {
  swapped: Record<string, 'rename' | 'copy' | 'upsert'>;
  at: Record<string, Record<number, string>>;
}

export async function swapIn(replay: ShadowReplay): Promise<Swapped> {
  const { model, topics, shadow } = replay;
  const swapped: Swapped['swapped'] = {};
  const at = await inTransaction(replay.db, async (client) => {
    const live = await lockLiveCheckpoints(client, model.name, topics, replay.positions);
    for (const topic of topics) {
      const ranges = rangesOf(replay.positions.get(topic)!, live.get(topic)!);
      const { aborted } = await readRanges(
        replay.kafka,
        topic,
        ranges,
        (partition, messages) => applyBatch(replay, client, topic, partition, messages),
        { signal: replay.signal },
      );
      if (aborted) throw new VigilError('REBUILD_ABORTED', `rebuild of ${model.name} stopped during the swap`);
    }
    await client.query('SET LOCAL search_path TO public');
    for (const table of model.writes.tables) swapped[table.name] = await swapTable(client, shadow, table.name);
    if (model.writes.sessionColumns.length > 0) {
      await client.query(sessionsSwapSql(shadow, model.writes.sessionColumns, await defaultsOf(client, 'sessions')));
      swapped.sessions = 'upsert';
    }
    return Object.fromEntries(
      topics.map((t) => [t, Object.fromEntries([...live.get(t)!].map(([p, o]) => [p, o.toString()]))]),
    );
  });
  return { swapped, at };
}

/** Swaps one owned table in (see `rebuildProjection`); says how. */
export async function swapTable(client: PoolClient, shadow: string, table: string): Promise<'rename' | 'copy'> {
  if (await mustCopy(client, table)) {
    for (const sql of copySwapSql(shadow, table, await columnsOf(client, table))) await client.query(sql);
    return 'copy';
  }
  const live = await indexesOf(client, 'public', table);
  const mine = await indexesOf(client, shadow, table);
  const renames = indexRenames(live, mine);
  for (const sql of renameSwapSql(shadow, table)) await client.query(sql);
  for (const r of renames) await client.query(renameIndexSql(r.from, r.to));
  return 'rename';
}

/** A hypertable, or a table a view (e.g. `fatigue_scores_1m`) depends on, cannot be dropped: copy into it. */
async function mustCopy(client: PoolClient, table: string): Promise<boolean> {
  const views = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
     WHERE d.refobjid = $1::regclass AND r.ev_class <> d.refobjid`,
    [`public.${table}`],
  );
  if (views.rows[0]!.n > 0) return true;
  const timescale = await client.query<{ present: boolean }>(
    `SELECT to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL AS present`,
  );
  if (!timescale.rows[0]!.present) return false;
  const hyper = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM _timescaledb_catalog.hypertable WHERE schema_name = 'public' AND table_name = $1`,
    [table],
  );
  return hyper.rows[0]!.n > 0;
}
