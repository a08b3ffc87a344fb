import type { PoolClient } from '../../core/db';
import type { Logger } from '../../core/logger';
import type { ReadModel } from '../model';
import { columnsOf, inTransaction } from './pg';
import { copyOlderSql, createShadowSql, ident, rebuildProjectionOf, searchPathSql, shadowPatternOf } from './sql';

/**
 * The shadow schema of a rebuild (`vigil_rebuild_<model>_<run>`, sql.ts): created with empty copies
 * of the tables the model owns and of `sessions`, seeded for a partial rebuild (`from`), and dropped
 * with the rebuild's checkpoints when the rebuild ends, or by the next run when a process died first.
 */

/** The shadow schema and, with `from`, the live rows older than it and what the model derives from them. */
export async function prepareShadow(db: PoolClient, model: ReadModel, shadow: string, from?: number): Promise<void> {
  await inTransaction(db, async (client) => {
    for (const sql of createShadowSql(shadow, [...model.writes.tables.map((t) => t.name), 'sessions'])) {
      await client.query(sql);
    }
    if (from === undefined) return;
    for (const table of model.writes.tables) {
      if (table.timeColumn) {
        await client.query(copyOlderSql(shadow, table.name, table.timeColumn, await columnsOf(client, table.name)), [
          new Date(from),
        ]);
      }
    }
    await client.query(searchPathSql(shadow));
    for (const sql of model.writes.seed) await client.query(sql);
  });
}

/**
 * Drops what an earlier run of this model left behind when its process died (kill -9) before its own
 * clean-up. Called under the model's advisory lock, so no other run of it is using them.
 */
export async function dropStale(db: PoolClient, log: Logger, model: string): Promise<void> {
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
export async function cleanUp(db: PoolClient, log: Logger, shadow: string, rebuildName: string): Promise<void> {
  try {
    await db.query(`DROP SCHEMA IF EXISTS ${ident(shadow)} CASCADE`);
    await db.query(`DELETE FROM public.projection_checkpoints WHERE projection = $1`, [rebuildName]);
  } catch (err) {
    log.warn({ err, shadow }, 'rebuild: could not drop the shadow schema; drop it by hand');
  }
}
