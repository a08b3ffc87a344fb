import { Pool, type CustomTypesConfig } from 'pg';
import { migrate } from '../../core/migrate';
import { retryTransient } from '../../core/retry';
import { assertDatabasePath } from './database-path';
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
  /**
   * Keep TimescaleDB's background jobs (compression, retention, aggregate refresh) scheduled. Off by
   * default: the policies act on wall-clock age, and the specs' fixtures carry fixed event times
   * (e.g. 2026-01-01), so a retention run would drop a spec's rows under it. Specs of the policies
   * run them explicitly (`CALL run_job(id)`).
   */
  timescaleJobs?: boolean;
}

export function migratedDatabase(options: MigratedDatabaseOptions = {}): Promise<MigratedDatabase> {
  return setUp(async (onClose) => {
    const database = await createTestDatabase();
    onClose(() => database.drop());
    await migrate({ database: database.url, log: testLogger() });
    const pool = new Pool({ connectionString: database.url, max: options.poolMax ?? 4, types: options.types });
    if (options.ignoreIdleClientErrors) pool.on('error', () => {});
    onClose(() => pool.end());
    await assertDatabasePath(pool, database.url);
    if (!options.timescaleJobs) await unscheduleTimescaleJobs(pool);
    return { url: database.url, pool };
  });
}

/** Unschedules every TimescaleDB policy job of the database (nothing on the plain path). */
export async function unscheduleTimescaleJobs(db: Pick<Pool, 'query'>): Promise<void> {
  const { rows } = await db.query<{ on: boolean }>('SELECT vigil_timescale() AS on');
  if (!rows[0]!.on) return;
  const { rows: jobs } = await db.query<{ id: number }>(
    `SELECT job_id AS id FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL ORDER BY job_id`,
  );
  for (const { id } of jobs) await unscheduleJob(db, id);
  // A run the scheduler started before the change still goes on: wait (up to 10 s) until none is left.
  for (let i = 0; i < 100; i++) {
    const { rows: running } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name ~ 'Policy \\[[0-9]+\\]'`,
    );
    if (running[0]!.n === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One job at a time, retried: TimescaleDB scans its job-statistics catalogue without an MVCC
 * snapshot, so a scheduler updating a job's statistics at that moment makes `alter_job` see both row
 * versions and fail with "more than one bgw job stat found" (seen once in CI). The update is over in
 * milliseconds; a retry then finds one row.
 */
async function unscheduleJob(db: Pick<Pool, 'query'>, id: number): Promise<void> {
  await retryTransient(
    () => db.query('SELECT alter_job($1, scheduled => false)', [id]),
    (err) => /more than one bgw job stat found/.test(String((err as Error).message)),
    10,
  );
}
