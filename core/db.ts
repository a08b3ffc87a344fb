import { createHash } from 'node:crypto';
import { Pool, type PoolClient, type QueryConfig } from 'pg';
import type { Config } from './config';
import { VigilError } from './errors';

export type { Pool, PoolClient };

/** The pg pool: one per process. */
export function createPool(cfg: Config['database'], applicationName: string): Pool {
  return new Pool({ connectionString: cfg.url, max: cfg.poolMax, application_name: applicationName });
}

/** A SQL statement with its parameters: what read models return and the projection runner applies. */
export interface Statement {
  text: string;
  values?: unknown[];
}

/** At most this many distinct texts are prepared; past it, statements go unnamed (parsed every time). */
const MAX_PREPARED = 256;
const preparedNames = new Map<string, string>();

/**
 * `statement` as a named (server-side prepared) statement: each connection parses it once and then only
 * binds and executes it; PostgreSQL may also reuse its plan (plan_cache_mode auto). For the hot
 * statements of the write path, whose texts are built once and only their arrays change: parsing and
 * planning were about a fifth of PostgreSQL's CPU per telemetry row (`npm run bench -- pg-row`). The
 * name derives from the text, so one text always gets one name and two texts never share one.
 * Bounded: past MAX_PREPARED distinct texts (a caller building texts per call, which it should not
 * prepare) the statement runs unnamed. A migration that changes a prepared statement's result
 * columns fails it once per connection (see `stalePrepared`). Not for connections through a pooler
 * in transaction mode, which does not keep a server session per client.
 */
export function prepared(statement: Statement): QueryConfig {
  let name = preparedNames.get(statement.text);
  if (name === undefined && preparedNames.size < MAX_PREPARED) {
    name = `vigil_${createHash('sha1').update(statement.text).digest('hex').slice(0, 24)}`;
    preparedNames.set(statement.text, name);
  }
  return name === undefined
    ? { text: statement.text, values: statement.values }
    : { name, text: statement.text, values: statement.values };
}

/** Runs `fn` in one transaction; rolls back on any error. Connection failures are retriable. */
export async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    throw new VigilError('DATABASE_UNAVAILABLE', 'cannot connect to PostgreSQL', { cause, retriable: true });
  }
  let drop = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    drop = stalePrepared(err);
    throw err;
  } finally {
    client.release(drop);
  }
}

/**
 * PostgreSQL refuses a prepared statement whose result columns changed under it (a migration while
 * the process runs) with "cached plan must not change result type", on that connection, until the
 * statement is prepared again: `inTransaction` then drops the connection instead of returning it to
 * the pool, so the caller's retry runs on a fresh one.
 */
function stalePrepared(err: unknown): boolean {
  return (err as { code?: unknown }).code === '0A000' && /cached plan must not change result type/.test(String(err));
}
