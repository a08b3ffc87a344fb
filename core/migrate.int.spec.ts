import { Client } from 'pg';
import { migrate } from './migrate';
import { createTestDatabase } from '../test/support/postgres';
import { testLogger } from '../test/support/env';

describe('vigil migrate on plain PostgreSQL', () => {
  let db: { url: string; drop: () => Promise<void> };
  let client: Client;
  const log = testLogger();

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  it('creates the tables with their time indexes and reports the plain path', async () => {
    const applied = await migrate({ database: db.url, log });
    expect(applied.slice(0, 3)).toEqual([
      '0001_timescale_helpers',
      '0002_sessions_eeg_checkpoints',
      '0003_tenants_api_keys',
    ]);

    const tables = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining(['eeg_frames', 'projection_checkpoints', 'sessions']),
    );
    const idx = await client.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'eeg_frames_session_ts_idx'`);
    expect(idx.rows[0].indexdef).toContain('(session_id, ts DESC)');
    const ts = await client.query('SELECT vigil_timescale() AS on');
    expect(ts.rows[0].on).toBe(false);
  });

  it('is idempotent: a second run applies nothing', async () => {
    expect(await migrate({ database: db.url, log })).toEqual([]);
  });

  it('rolls back down to an empty schema', async () => {
    await migrate({ database: db.url, log, direction: 'down', count: Infinity });
    const tables = await client.query(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'vigil_migrations'`,
    );
    expect(tables.rows[0].n).toBe(0);
  });
});
