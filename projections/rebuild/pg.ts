import type { PoolClient } from '../../core/db';

/**
 * The rebuild's PostgreSQL helpers on its one connection: a transaction, and the catalog reads the
 * shadow and the swap need (a live table's columns, their defaults, a table's indexes). No writes of
 * their own.
 */

/** Runs `fn` in one transaction on `db`; rolls back on any error. */
export async function inTransaction<T>(db: PoolClient, fn: (client: PoolClient) => Promise<T>): Promise<T> {
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

/** The columns of `public.<table>`, in table order. */
export async function columnsOf(client: PoolClient, table: string): Promise<string[]> {
  const { rows } = await client.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => r.column_name);
}

/** Each column of `public.<table>` with its default expression (`NULL` when it has none). */
export async function defaultsOf(client: PoolClient, table: string): Promise<Record<string, string>> {
  const { rows } = await client.query<{ column_name: string; column_default: string | null }>(
    `SELECT column_name, column_default FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`,
    [table],
  );
  return Object.fromEntries(rows.map((r) => [r.column_name, r.column_default ?? 'NULL']));
}

/** The indexes of `<schema>.<table>` with their definitions, by name. */
export async function indexesOf(
  client: PoolClient,
  schema: string,
  table: string,
): Promise<{ name: string; def: string }[]> {
  const { rows } = await client.query<{ name: string; def: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = $1 AND t.relname = $2 ORDER BY i.relname`,
    [schema, table],
  );
  return rows;
}
