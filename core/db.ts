import { Pool, type PoolClient } from 'pg';
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

/** Runs `fn` in one transaction; rolls back on any error. Connection failures are retriable. */
export async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    throw new VigilError('DATABASE_UNAVAILABLE', 'cannot connect to PostgreSQL', { cause, retriable: true });
  }
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
