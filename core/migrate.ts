import * as fs from 'node:fs';
import * as path from 'node:path';
import { runner } from 'node-pg-migrate';
import { Client, type ClientBase } from 'pg';
import type { Logger } from './logger';

/**
 * Applies the SQL migrations in migrations/ (node-pg-migrate, `-- Up Migration` / `-- Down Migration`
 * sections, one transaction each, under an advisory lock so two `vigil migrate` runs cannot race).
 * Run explicitly by `vigil migrate`, never on first use.
 */
interface MigrateOptions {
  /** A connection string, or an open client (PGlite serves one client at a time). */
  database: string | ClientBase;
  direction?: 'up' | 'down';
  count?: number;
  log: Logger;
  /**
   * When the server cannot create TimescaleDB (not installed, or installed but not in
   * shared_preload_libraries): 'auto' (default) takes the plain-table path with a warning, 'required'
   * fails naming what to change. Migration 0001 reads it as the session setting `vigil.timescaledb`.
   */
  timescaledb?: 'auto' | 'required';
}

function migrationsDir(): string {
  for (const dir of [path.join(__dirname, '..', 'migrations'), path.join(__dirname, '..', '..', 'migrations')]) {
    if (fs.existsSync(path.join(dir, '0001_timescale_helpers.sql'))) return dir;
  }
  throw new Error(`migrations/ not found from ${__dirname}`);
}

export async function migrate(opts: MigrateOptions): Promise<string[]> {
  // A client of our own: the migrations' warnings (e.g. TimescaleDB installed but not preloaded) reach
  // the log as notices, and 0001 reads the TimescaleDB choice from a session setting.
  const own = typeof opts.database === 'string' ? new Client({ connectionString: opts.database }) : undefined;
  const client = own ?? (opts.database as ClientBase);
  const onNotice = (n: { severity?: string; message?: string }) => {
    if (n.severity === 'WARNING') opts.log.warn({ notice: n.message }, `migration: ${n.message}`);
  };
  if (own) {
    await own.connect();
    own.on('notice', onNotice);
  }
  try {
    await client.query(`SELECT set_config('vigil.timescaledb', $1, false)`, [opts.timescaledb ?? 'auto']);
    return await run(client, opts);
  } finally {
    if (own) await own.end();
  }
}

async function run(client: ClientBase, opts: MigrateOptions): Promise<string[]> {
  const applied = await runner({
    dbClient: client,
    dir: migrationsDir(),
    ignorePattern: '(\\..*)|(.*\\.(ts|js|md))',
    migrationsTable: 'vigil_migrations',
    direction: opts.direction ?? 'up',
    count: opts.count ?? Infinity,
    checkOrder: true,
    log: (msg: string) => opts.log.debug(msg),
    logger: {
      debug: (m: string) => opts.log.debug(m),
      info: (m: string) => opts.log.debug(m),
      warn: (m: string) => opts.log.warn(m),
      // Our files use 4-digit sequence prefixes (0001_...), which node-pg-migrate orders by name as
      // intended but reports as an error because they are not 13-digit timestamps.
      error: (m: string) => (m.startsWith("Can't determine timestamp") ? opts.log.debug(m) : opts.log.error(m)),
    },
  });
  return applied.map((m) => m.name);
}
