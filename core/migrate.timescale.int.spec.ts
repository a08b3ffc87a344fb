import type { Client } from 'pg';
import { migrate } from './migrate';
import { startTimescalePglite } from '../test/support/pglite';
import { testLogger } from '../test/support/env';

describe('vigil migrate on TimescaleDB (PGlite)', () => {
  let pg: { client: Client; stop: () => Promise<void> };
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

  beforeAll(async () => {
    pg = await startTimescalePglite();
  });
  afterAll(() => pg?.stop());

  it('creates the extension and makes the event tables hypertables with 1-day chunks', async () => {
    await migrate({ database: pg.client, log });

    const on = await pg.client.query('SELECT vigil_timescale() AS on');
    expect(on.rows[0].on).toBe(true);
    const dims = await pg.client.query(
      `SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions
       WHERE hypertable_schema = 'public' ORDER BY 1`,
    );
    expect(dims.rows).toEqual(
      hypertables.map((t) => ({ hypertable_name: t, column_name: 'ts', time_interval: { days: 1 } })),
    );
  });

  it('compresses every hypertable segmented by session and ordered by ts DESC, after 7 days', async () => {
    const settings = await pg.client.query(
      `SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc
       FROM timescaledb_information.compression_settings WHERE hypertable_schema = 'public' ORDER BY 1, 2`,
    );
    expect(settings.rows).toEqual(
      hypertables.flatMap((t) => [
        {
          hypertable_name: t,
          attname: 'session_id',
          segmentby_column_index: 1,
          orderby_column_index: null,
          orderby_asc: null,
        },
        {
          hypertable_name: t,
          attname: 'ts',
          segmentby_column_index: null,
          orderby_column_index: 1,
          orderby_asc: false,
        },
      ]),
    );
    const jobs = await pg.client.query(
      `SELECT hypertable_name, config->>'compress_after' AS after FROM timescaledb_information.jobs
       WHERE proc_name = 'policy_compression' ORDER BY 1`,
    );
    expect(jobs.rows).toEqual(hypertables.map((t) => ({ hypertable_name: t, after: '7 days' })));
  });

  it('drops raw telemetry after 90 days and scores and alert events after 365 days', async () => {
    const jobs = await pg.client.query(
      `SELECT hypertable_name, config->>'drop_after' AS after FROM timescaledb_information.jobs
       WHERE proc_name = 'policy_retention' ORDER BY 1`,
    );
    expect(jobs.rows).toEqual(
      hypertables.map((t) => ({ hypertable_name: t, after: telemetry.includes(t) ? '90 days' : '365 days' })),
    );
  });

  it('keeps a real-time per-minute continuous aggregate of the scores, refreshed every minute', async () => {
    const caggs = await pg.client.query(
      `SELECT view_name, hypertable_name, materialized_only FROM timescaledb_information.continuous_aggregates`,
    );
    expect(caggs.rows).toEqual([
      { view_name: 'fatigue_scores_1m', hypertable_name: 'fatigue_scores', materialized_only: false },
    ]);
    const jobs = await pg.client.query(
      `SELECT j.schedule_interval, j.config FROM timescaledb_information.jobs j
       WHERE j.proc_name = 'policy_refresh_continuous_aggregate'`,
    );
    expect(jobs.rows).toEqual([
      {
        schedule_interval: { minutes: 1 },
        config: expect.objectContaining({ start_offset: '1 day', end_offset: '00:01:00' }),
      },
    ]);

    await pg.client.query(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features, baseline_ready, model_version)
       VALUES ('s', '2026-01-01T00:00:05Z', '6f1c8a3e-1b2d-4c5e-8f90-000000000001', 't', '2026-01-01T00:00:00Z', 50.5, 1, '{}', true, 'fatigue-v1'),
              ('s', '2026-01-01T00:00:10Z', '6f1c8a3e-1b2d-4c5e-8f90-000000000002', 't', '2026-01-01T00:00:05Z', 70, 2, '{}', true, 'fatigue-v1')`,
    );
    const trend = await pg.client.query(`SELECT * FROM fatigue_scores_1m`);
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
    await pg.client.query('DELETE FROM fatigue_scores');
  });

  it('accepts rows through the same idempotent insert as plain PostgreSQL', async () => {
    const insert = `INSERT INTO eeg_frames (event_id, ts, tenant_id, session_id, device_id, seq, channels)
      VALUES ('6f1c8a3e-1b2d-4c5e-8f90-123456789abc', '2026-01-01T00:00:00Z', 't', 's', 'd', 1, '[]')
      ON CONFLICT DO NOTHING`;
    const first = await pg.client.query(insert);
    const second = await pg.client.query(insert);
    expect([first.rowCount, second.rowCount]).toEqual([1, 0]);
  });

  it('keeps the insert idempotent once a chunk is compressed', async () => {
    const compressed = await pg.client.query(`SELECT compress_chunk(c) FROM show_chunks('eeg_frames') c`);
    expect(compressed.rowCount).toBe(1);
    const again = await pg.client
      .query(`INSERT INTO eeg_frames (event_id, ts, tenant_id, session_id, device_id, seq, channels)
      VALUES ('6f1c8a3e-1b2d-4c5e-8f90-123456789abc', '2026-01-01T00:00:00Z', 't', 's', 'd', 1, '[]')
      ON CONFLICT DO NOTHING`);
    expect(again.rowCount).toBe(0);
  });

  it('rolls back down to an empty schema, compressed chunks included', async () => {
    await migrate({ database: pg.client, log, direction: 'down', count: Infinity });
    const tables = await pg.client.query(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'vigil_migrations'`,
    );
    expect(tables.rows[0].n).toBe(0);
    const jobs = await pg.client.query(
      `SELECT count(*)::int AS n FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL`,
    );
    expect(jobs.rows[0].n).toBe(0);
  });
});
