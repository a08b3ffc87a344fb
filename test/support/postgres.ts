import { Client } from 'pg';
import { uniqueName } from './env';

/**
 * The server specs make their databases on: the stack's TimescaleDB cluster (deploy/local/timescaledb.sh)
 * by default; the `int-plain` jest project points it at the machine's plain PostgreSQL
 * (test/support/plain-postgres.ts).
 */
const ADMIN_URL = process.env.VIGIL_TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5433/postgres';

/** A fresh, empty database on the test PostgreSQL server; `drop()` removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = uniqueName('vigil_test_');
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: ADMIN_URL });
      await c.connect();
      // pg's Pool.end() resolves once it has asked its clients to end, not once they have: a FORCE drop
      // racing those goodbyes makes a closing client emit an unhandled 'error'. Give them up to 2 s.
      for (let i = 0; i < 20; i++) {
        const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [
          name,
        ]);
        if (rows[0]!.n === '0') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
