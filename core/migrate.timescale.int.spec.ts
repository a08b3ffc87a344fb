import { Client } from 'pg';
import { migrate } from './migrate';
import { createTestDatabase } from '../test/support/postgres';
import { unscheduleTimescaleJobs } from '../test/support/database';
import { testLogger } from '../test/support/env';

/**
 * `vigil migrate` on the stack's PostgreSQL 15 cluster with TimescaleDB 2.28 preloaded (project
 * `int`): hypertables with chunk intervals by rate, compression and retention policies that really
 * run (`CALL run_job`), the per-minute continuous aggregate and its refresh policy, and the way back.
 */
describe('vigil migrate on TimescaleDB', () => {
  let db: { url: string; drop: () => Promise<void> };
  let client: Client;
  const log = testLogger();
  const telemetry = ['eeg_frames', 'face_frames', 'game_events', 'vehicle_frames'];
  const hypertables = [
    'alert_events',
    'eeg_frames',
    'face_frames',
    'fatigue_scores',
    'fatigue_scores_whatif',
    'game_events',
    'vehicle_frames',
  ];
  const DAY = 86_400_000;
  /** One hour into the 6-hour eeg chunk that holds `ms` ago: a few minutes of rows stay in one chunk. */
  const inChunk = (ago: number) => Math.floor((Date.now() - ago) / (6 * 3_600_000)) * 6 * 3_600_000 + 3_600_000;
  const jobOf = async (proc: string, table: string) =>
    (
      await client.query<{ job_id: number }>(
        `SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2`,
        [proc, table],
      )
    ).rows[0]!.job_id;
  const eeg = (id: number, ts: Date, session = 's') =>
    client.query(
      `INSERT INTO eeg_frames (event_id, ts, tenant_id, session_id, device_id, seq, channels)
       VALUES ($1, $2, 't', $3, 'd', $4, '[{"ch":"Fz","alpha":1.5}]') ON CONFLICT DO NOTHING`,
      [`6f1c8a3e-1b2d-4c5e-8f90-${id.toString(16).padStart(12, '0')}`, ts, session, id],
    );

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('creates the extension and makes the event tables hypertables, chunk intervals by rate', async () => {
    await migrate({ database: db.url, log, timescaledb: 'required' });
    // The policies act on wall-clock age; this spec runs them itself, with run_job.
    await unscheduleTimescaleJobs(client);

    const on = await client.query('SELECT vigil_timescale() AS on, extversion FROM pg_extension WHERE extname = $1', [
      'timescaledb',
    ]);
    expect(on.rows[0]).toEqual({ on: true, extversion: '2.28.3' });
    const dims = await client.query(
      `SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions
       WHERE hypertable_schema = 'public' ORDER BY 1`,
    );
    expect(dims.rows).toEqual([
      { hypertable_name: 'alert_events', column_name: 'ts', time_interval: { days: 30 } },
      { hypertable_name: 'eeg_frames', column_name: 'ts', time_interval: { hours: 6 } },
      { hypertable_name: 'face_frames', column_name: 'ts', time_interval: { hours: 6 } },
      { hypertable_name: 'fatigue_scores', column_name: 'ts', time_interval: { days: 7 } },
      { hypertable_name: 'fatigue_scores_whatif', column_name: 'ts', time_interval: { days: 7 } },
      { hypertable_name: 'game_events', column_name: 'ts', time_interval: { days: 1 } },
      { hypertable_name: 'vehicle_frames', column_name: 'ts', time_interval: { hours: 6 } },
    ]);
  });

  it('indexes each telemetry row once, by its key within the session (no default time index)', async () => {
    const indexes = await client.query<{ tablename: string; indexdef: string }>(
      `SELECT tablename, indexdef FROM pg_indexes
       WHERE schemaname = 'public' AND tablename IN ('eeg_frames', 'face_frames', 'vehicle_frames', 'game_events') ORDER BY 1`,
    );
    expect(indexes.rows.map((r) => `${r.tablename}: ${r.indexdef.slice(r.indexdef.indexOf(' USING '))}`)).toEqual([
      'eeg_frames:  USING btree (tenant_id, session_id, ts, event_id)',
      'face_frames:  USING btree (tenant_id, session_id, ts, event_id)',
      'game_events:  USING btree (tenant_id, session_id, ts, event_id)',
      'vehicle_frames:  USING btree (tenant_id, session_id, ts, event_id)',
    ]);
  });

  it('compresses every hypertable segmented by session and ordered by ts DESC, after 7 days', async () => {
    const settings = await client.query(
      `SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc
       FROM timescaledb_information.compression_settings WHERE hypertable_schema = 'public'
       ORDER BY 1, segmentby_column_index NULLS LAST, orderby_column_index`,
    );
    const setting = (attname: string, segmentby: number | null, orderby: number | null, asc: boolean | null) => ({
      attname,
      segmentby_column_index: segmentby,
      orderby_column_index: orderby,
      orderby_asc: asc,
    });
    // The telemetry tables' settings follow their key (0012): tenant and session, then ts and event id.
    const of = (t: string) =>
      telemetry.includes(t)
        ? [
            setting('tenant_id', 1, null, null),
            setting('session_id', 2, null, null),
            setting('ts', null, 1, false),
            setting('event_id', null, 2, true),
          ]
        : [setting('session_id', 1, null, null), setting('ts', null, 1, false)];
    expect(settings.rows).toEqual(hypertables.flatMap((t) => of(t).map((x) => ({ hypertable_name: t, ...x }))));
    const jobs = await client.query(
      `SELECT hypertable_name, config->>'compress_after' AS after FROM timescaledb_information.jobs
       WHERE proc_name = 'policy_compression' ORDER BY 1`,
    );
    expect(jobs.rows).toEqual(hypertables.map((t) => ({ hypertable_name: t, after: '7 days' })));
  });

  it('drops raw telemetry after 90 days and scores and alert events after 365 days', async () => {
    const jobs = await client.query(
      `SELECT hypertable_name, config->>'drop_after' AS after FROM timescaledb_information.jobs
       WHERE proc_name = 'policy_retention' ORDER BY 1`,
    );
    expect(jobs.rows).toEqual(
      hypertables.map((t) => ({ hypertable_name: t, after: telemetry.includes(t) ? '90 days' : '365 days' })),
    );
  });

  it('runs the compression policy: chunks older than 7 days compressed, newer ones not, rows all readable', async () => {
    for (let i = 0; i < 200; i++) await eeg(i, new Date(inChunk(10 * DAY) + i * 1000), `s${i % 4}`);
    for (let i = 200; i < 210; i++) await eeg(i, new Date(inChunk(DAY) + i * 1000));
    await client.query('CALL run_job($1)', [await jobOf('policy_compression', 'eeg_frames')]);
    const chunks = await client.query<{ old: boolean; is_compressed: boolean }>(
      `SELECT range_end < now() - interval '7 days' AS old, is_compressed FROM timescaledb_information.chunks
       WHERE hypertable_name = 'eeg_frames' ORDER BY range_start`,
    );
    expect(chunks.rows).toEqual([
      { old: true, is_compressed: true },
      { old: false, is_compressed: false },
    ]);
    const stats = await client.query(
      `SELECT total_chunks::int, number_compressed_chunks::int FROM hypertable_compression_stats('eeg_frames')`,
    );
    expect(stats.rows[0]).toEqual({ total_chunks: 2, number_compressed_chunks: 1 });
    const rows = await client.query(
      `SELECT count(*)::int AS n, count(DISTINCT session_id)::int AS sessions FROM eeg_frames`,
    );
    expect(rows.rows[0]).toEqual({ n: 210, sessions: 5 });
  });

  it('keeps the insert idempotent once a chunk is compressed', async () => {
    const first = await client.query(`SELECT min(ts) AS ts FROM eeg_frames`);
    const again = await eeg(0, first.rows[0].ts, 's0');
    expect(again.rowCount).toBe(0);
    const fresh = await eeg(999, new Date(first.rows[0].ts.getTime() + 500));
    expect(fresh.rowCount).toBe(1);
  });

  it('runs the retention policy: telemetry chunks older than 90 days dropped, the rest kept', async () => {
    for (let i = 0; i < 5; i++) await eeg(1000 + i, new Date(inChunk(100 * DAY) + i * 1000));
    expect((await client.query(`SELECT count(*)::int AS n FROM show_chunks('eeg_frames')`)).rows[0].n).toBe(3);
    await client.query('CALL run_job($1)', [await jobOf('policy_retention', 'eeg_frames')]);
    const left = await client.query(
      `SELECT count(*)::int AS n, min(ts) > now() - interval '90 days' AS young FROM eeg_frames`,
    );
    expect(left.rows[0]).toEqual({ n: 211, young: true });
    expect((await client.query(`SELECT count(*)::int AS n FROM show_chunks('eeg_frames')`)).rows[0].n).toBe(2);
  });

  it('keeps a real-time per-minute continuous aggregate of the scores, refreshed every minute by its policy', async () => {
    const caggs = await client.query(
      `SELECT view_name, hypertable_name, materialized_only FROM timescaledb_information.continuous_aggregates`,
    );
    expect(caggs.rows).toEqual([
      { view_name: 'fatigue_scores_1m', hypertable_name: 'fatigue_scores', materialized_only: false },
    ]);
    const jobs = await client.query(
      `SELECT j.job_id, j.schedule_interval, j.config FROM timescaledb_information.jobs j
       WHERE j.proc_name = 'policy_refresh_continuous_aggregate'`,
    );
    expect(jobs.rows).toEqual([
      {
        job_id: expect.any(Number),
        schedule_interval: { minutes: 1 },
        config: expect.objectContaining({ start_offset: '1 day', end_offset: '00:01:00' }),
      },
    ]);
    const minute = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
    await client.query(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features, baseline_ready, model_version)
       VALUES ('s', $1, '6f1c8a3e-1b2d-4c5e-8f90-000000000001', 't', $1, 50.5, 1, '{}', true, 'fatigue-v1'),
              ('s', $2, '6f1c8a3e-1b2d-4c5e-8f90-000000000002', 't', $1, 70, 2, '{}', true, 'fatigue-v1')`,
      [new Date(minute + 5_000), new Date(minute + 10_000)],
    );
    const expected = {
      bucket: new Date(minute),
      tenant_id: 't',
      session_id: 's',
      score_avg: 60.25,
      score_max: 70,
      level_max: 2,
      score_count: '2',
    };
    // Real-time: there before any refresh.
    expect((await client.query(`SELECT * FROM fatigue_scores_1m`)).rows).toEqual([expected]);
    const { rows } = await client.query<{ t: string }>(
      `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) AS t
         FROM timescaledb_information.continuous_aggregates WHERE view_name = 'fatigue_scores_1m'`,
    );
    const materialized = async () => (await client.query(`SELECT count(*)::int AS n FROM ${rows[0]!.t}`)).rows[0].n;
    expect(await materialized()).toBe(0);
    await client.query('CALL run_job($1)', [jobs.rows[0].job_id]);
    expect(await materialized()).toBe(1);
    expect((await client.query(`SELECT * FROM fatigue_scores_1m`)).rows).toEqual([expected]);
    await client.query('DELETE FROM fatigue_scores');
  });

  it('rolls back down to an empty schema, compressed chunks included', async () => {
    await migrate({ database: db.url, log, direction: 'down', count: Infinity });
    const tables = await client.query(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'vigil_migrations'`,
    );
    expect(tables.rows[0].n).toBe(0);
    const jobs = await client.query(
      `SELECT count(*)::int AS n FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL`,
    );
    expect(jobs.rows[0].n).toBe(0);
  });
});
