import { Pool, type CustomTypesConfig } from 'pg';
import { migrate } from '../../core/migrate';
import { testLogger } from './env';
import { setUp } from './fixture';
import { createTestDatabase } from './postgres';

/**
 * A fresh database of the spec's own on the local PostgreSQL server, migrated to the newest schema,
 * with a pool on it. `close()` ends the pool, then drops the database; a set-up that fails half-way
 * undoes what it had made before it throws.
 */
export interface MigratedDatabase {
  /** Connection URL (for `VIGIL_DATABASE_URL` of the processes a spec starts). */
  url: string;
  pool: Pool;
  close(): Promise<void>;
}

export interface MigratedDatabaseOptions {
  /** Pool size (default 4). */
  poolMax?: number;
  /** Ignore errors of idle pool clients (a database dropped under them at the end). */
  ignoreIdleClientErrors?: boolean;
  /** The pool's result parsers (pg's `types`), e.g. timestamps as ISO text. */
  types?: CustomTypesConfig;
}

export function migratedDatabase(options: MigratedDatabaseOptions = {}): Promise<MigratedDatabase> {
  return setUp(async (onClose) => {
    const database = await createTestDatabase();
    onClose(() => database.drop());
    await migrate({ database: database.url, log: testLogger() });
    const pool = new Pool({ connectionString: database.url, max: options.poolMax ?? 4, types: options.types });
    if (options.ignoreIdleClientErrors) pool.on('error', () => {});
    onClose(() => pool.end());
    return { url: database.url, pool };
  });
}
