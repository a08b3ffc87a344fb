import { Client } from 'pg';
import { migrate } from './migrate';
import { createTestDatabase } from '../test/support/postgres';
import { testLogger } from '../test/support/env';
import type { Logger } from './logger';

/**
 * `vigil migrate` on the machine's PostgreSQL (project `int-plain`), which has no TimescaleDB
 * preloaded. On this machine kind the stack has installed the extension's files into the server's
 * folders (deploy/local/timescaledb.sh), so this is also the "installed but not preloaded" server:
 * migrations must still take the plain path (with a warning), or fail clearly when TimescaleDB was
 * required.
 */
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

  const timeTables = ['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events', 'alert_events'];

  it('creates the tables with their time indexes and reports the plain path', async () => {
    const applied = await migrate({ database: db.url, log });
    expect(applied.slice(0, 5)).toEqual([
      '0001_timescale_helpers',
      '0002_sessions_eeg_checkpoints',
      '0003_tenants_api_keys',
      '0004_read_models',
      '0005_timescale_policies',
    ]);

    const tables = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`,
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        'alert_events',
        'alerts',
        'eeg_frames',
        'face_frames',
        'fatigue_scores',
        'game_events',
        'projection_checkpoints',
        'session_reports',
        'sessions',
        'vehicle_frames',
      ]),
    );
    // The telemetry tables' one B-tree is their key (0012); alert_events keeps its session index.
    const btrees = await client.query<{ tablename: string; n: number }>(
      `SELECT tablename, count(*)::int AS n FROM pg_indexes WHERE tablename = ANY($1) AND indexdef LIKE '% USING btree %'
       GROUP BY 1 ORDER BY 1`,
      [timeTables],
    );
    expect(Object.fromEntries(btrees.rows.map((r) => [r.tablename, r.n]))).toEqual({
      alert_events: 3,
      eeg_frames: 1,
      face_frames: 1,
      game_events: 1,
      vehicle_frames: 1,
    });
    const idx = await client.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'alert_events_session_ts_idx'`);
    expect(idx.rows[0]?.indexdef).toContain(`ON public.alert_events USING btree (session_id, ts DESC)`);
    const keys = await client.query<{ table_name: string; def: string }>(
      `SELECT conrelid::regclass::text AS table_name, pg_get_constraintdef(oid) AS def FROM pg_constraint
       WHERE contype = 'p' AND conrelid::regclass::text = ANY($1) ORDER BY 1`,
      [[...timeTables, 'fatigue_scores', 'fatigue_scores_whatif', 'alerts', 'sessions', 'session_reports']],
    );
    // A session is the pair (tenant_id, session_id) and an alert (tenant_id, alert_id) in every key (0010);
    // a telemetry row is keyed within its session (0012).
    expect(Object.fromEntries(keys.rows.map((r) => [r.table_name, r.def]))).toEqual({
      alert_events: 'PRIMARY KEY (event_id, ts)',
      alerts: 'PRIMARY KEY (tenant_id, alert_id)',
      eeg_frames: 'PRIMARY KEY (tenant_id, session_id, ts, event_id)',
      face_frames: 'PRIMARY KEY (tenant_id, session_id, ts, event_id)',
      fatigue_scores: 'PRIMARY KEY (tenant_id, session_id, ts)',
      fatigue_scores_whatif: 'PRIMARY KEY (model_version, tenant_id, session_id, ts)',
      game_events: 'PRIMARY KEY (tenant_id, session_id, ts, event_id)',
      session_reports: 'PRIMARY KEY (tenant_id, session_id)',
      sessions: 'PRIMARY KEY (tenant_id, session_id)',
      vehicle_frames: 'PRIMARY KEY (tenant_id, session_id, ts, event_id)',
    });
    const open = await client.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'alerts_tenant_open_idx'`);
    expect(open.rows[0].indexdef).toContain(`(tenant_id, raised_at DESC) WHERE (status <> 'cleared'::text)`);

    const sessionColumns = await client.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'sessions'`,
    );
    expect(sessionColumns.rows.map((r) => r.column_name)).toEqual(
      expect.arrayContaining([
        'last_score',
        'last_level',
        'last_score_at',
        'max_score',
        'max_level',
        'alert_count',
        'open_alert_count',
        'last_seen_at',
      ]),
    );
    const ts = await client.query('SELECT vigil_timescale() AS on');
    expect(ts.rows[0].on).toBe(false);
  });

  it('serves the per-minute score trend as a plain view with the continuous aggregate’s columns', async () => {
    await client.query(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features, baseline_ready, model_version)
       VALUES ('s', '2026-01-01T00:00:05Z', gen_random_uuid(), 't', '2026-01-01T00:00:00Z', 50.5, 1, '{}', true, 'fatigue-v1'),
              ('s', '2026-01-01T00:00:10Z', gen_random_uuid(), 't', '2026-01-01T00:00:05Z', 70, 2, '{}', true, 'fatigue-v1')`,
    );
    const trend = await client.query(`SELECT * FROM fatigue_scores_1m`);
    expect(trend.rows).toEqual([
      {
        bucket: new Date('2026-01-01T00:00:00Z'),
        tenant_id: 't',
        session_id: 's',
        score_avg: 60.25,
        score_max: 70,
        level_max: 2,
        score_count: '2',
      },
    ]);
    await client.query('DELETE FROM fatigue_scores');
  });

  it('warns naming shared_preload_libraries when TimescaleDB is installed but not preloaded', async () => {
    const other = await createTestDatabase();
    try {
      const warnings: string[] = [];
      const base = testLogger();
      const recording = Object.assign(Object.create(base) as Logger, {
        warn: (obj: unknown, msg?: string) => void warnings.push(typeof obj === 'string' ? obj : (msg ?? '')),
      });
      await migrate({ database: other.url, log: recording });
      const c = new Client({ connectionString: other.url });
      await c.connect();
      const facts = await c.query(
        `SELECT vigil_timescale() AS on,
                EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS installed`,
      );
      await c.end();
      expect(facts.rows[0].on).toBe(false);
      if (facts.rows[0].installed) {
        expect(warnings).toEqual([
          expect.stringContaining(
            "timescaledb is installed but not preloaded: add it to shared_preload_libraries in postgresql.conf (shared_preload_libraries = 'timescaledb') and restart the server: using plain tables",
          ),
        ]);
      } else {
        expect(warnings).toEqual([]);
      }
    } finally {
      await other.drop();
    }
  });

  it('fails with VIGIL_TIMESCALEDB=required, naming what to change, and leaves nothing applied', async () => {
    const other = await createTestDatabase();
    try {
      const err = await migrate({ database: other.url, log, timescaledb: 'required' }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(
        /VIGIL_TIMESCALEDB=required: timescaledb is (installed but not preloaded: add it to shared_preload_libraries|not installed on this server)/,
      );
      const c = new Client({ connectionString: other.url });
      await c.connect();
      const left = await c.query(`SELECT to_regclass('public.sessions') IS NULL AS none`);
      await c.end();
      expect(left.rows[0]).toEqual({ none: true });
    } finally {
      await other.drop();
    }
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
