import type { Pool, ClientBase } from 'pg';

/**
 * Which storage path the specs of this jest project run on: 'timescaledb' (project `int`, the stack's
 * TimescaleDB cluster) or 'plain' (project `int-plain`, the machine's PostgreSQL; set by
 * test/support/plain-postgres.ts). Known synchronously, so a spec can name the path in its titles.
 */
export type DatabasePath = 'timescaledb' | 'plain';

export const databasePath = (): DatabasePath =>
  process.env.VIGIL_TEST_DATABASE_PATH === 'plain' ? 'plain' : 'timescaledb';

export const onTimescale = (): boolean => databasePath() === 'timescaledb';

/**
 * Fails unless the migrated database is on the expected path: a stack that fell back to plain
 * PostgreSQL must not let the TimescaleDB specs pass on plain tables (nor the other way round).
 */
export async function assertDatabasePath(db: Pool | ClientBase, url: string): Promise<void> {
  const { rows } = await db.query<{ on: boolean }>('SELECT vigil_timescale() AS on');
  const actual: DatabasePath = rows[0]!.on ? 'timescaledb' : 'plain';
  if (actual !== databasePath()) {
    const where = new URL(url);
    throw new Error(
      `the test database on ${where.host} is on the ${actual} path, but this jest project expects ${databasePath()}: ` +
        (actual === 'plain'
          ? 'bring up the TimescaleDB cluster (bash deploy/local/stack.sh up timescaledb) or point VIGIL_TEST_ADMIN_DATABASE_URL at a server that preloads timescaledb'
          : 'point VIGIL_TEST_PLAIN_ADMIN_DATABASE_URL at a server without timescaledb preloaded'),
    );
  }
}
