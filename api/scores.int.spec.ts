import { migratedDatabase, type MigratedDatabase } from '../test/support/database';
import { databasePath, onTimescale } from '../test/support/database-path';
import { bucketed } from './score-queries';

/**
 * The bucketed scores query of `/v1/sessions/:id/scores` on the path this project runs on. TimescaleDB:
 * 1m buckets come from the continuous aggregate `fatigue_scores_1m` (real-time: the newest minutes
 * before any refresh, then the materialized part plus the real-time rest after a refresh under
 * further ingest), 5m and 1h re-aggregated from it, and everything equal to `date_bin` on the raw
 * table. Plain PostgreSQL: the `date_bin` query over the raw table gives the same buckets.
 */
describe(`bucketed scores (${databasePath()} path)`, () => {
  let db: MigratedDatabase;
  const T0 = Date.UTC(2026, 2, 1, 8);
  const MIN = 60_000;
  const insert = (ms: number, score: number, level: number, tenant = 't1') =>
    db.pool.query(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features,
         baseline_ready, model_version)
       VALUES ('s1', $1, gen_random_uuid(), $4, $1, $2, $3, '{}', true, 'fatigue-v1')`,
      [new Date(T0 + ms), score, level, tenant],
    );

  beforeAll(async () => {
    db = await migratedDatabase();
    const scores: [number, number, number][] = [
      [5_000, 10, 0],
      [35_000, 30, 0],
      [65_000, 60, 1],
      [95_000, 80, 2],
      [300_000, 40, 0],
      [3_600_000 + 5_000, 90, 2],
    ];
    for (const [ms, score, level] of scores) await insert(ms, score, level);
    // Another tenant's score in the same minute must not count.
    await insert(6_000, 100, 2, 't2');
  }, 120_000);
  afterAll(() => db?.close());

  const run = (timescale: boolean, bucket: '1m' | '5m' | '1h') =>
    bucketed(db.pool, timescale, 's1', 't1', new Date(T0), new Date(T0 + 2 * 3_600_000), bucket);
  const at = (ms: number) => new Date(T0 + ms).toISOString();
  const expected1m = [
    { bucket_start: at(0), score_avg: 20, score_max: 30, level_max: 0, count: 2 },
    { bucket_start: at(MIN), score_avg: 70, score_max: 80, level_max: 2, count: 2 },
    { bucket_start: at(5 * MIN), score_avg: 40, score_max: 40, level_max: 0, count: 1 },
    { bucket_start: at(60 * MIN), score_avg: 90, score_max: 90, level_max: 2, count: 1 },
  ];
  const expected5m = [
    { bucket_start: at(0), score_avg: 45, score_max: 80, level_max: 2, count: 4 },
    { bucket_start: at(5 * MIN), score_avg: 40, score_max: 40, level_max: 0, count: 1 },
    { bucket_start: at(60 * MIN), score_avg: 90, score_max: 90, level_max: 2, count: 1 },
  ];
  const expected1h = [
    { bucket_start: at(0), score_avg: 44, score_max: 80, level_max: 2, count: 5 },
    { bucket_start: at(60 * MIN), score_avg: 90, score_max: 90, level_max: 2, count: 1 },
  ];

  it('answers 1m, 5m and 1h buckets with date_bin over the raw table, averages weighted by count', async () => {
    expect(await run(false, '1m')).toEqual(expected1m);
    expect(await run(false, '5m')).toEqual(expected5m);
    expect(await run(false, '1h')).toEqual(expected1h);
  });

  if (onTimescale()) {
    it('reads 1m buckets from the real-time continuous aggregate before any refresh, re-aggregates 5m and 1h', async () => {
      const { rows } = await db.pool.query<{ t: string }>(
        `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) AS t
           FROM timescaledb_information.continuous_aggregates WHERE view_name = 'fatigue_scores_1m'`,
      );
      const materialized = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${rows[0]!.t}`);
      expect(materialized.rows[0]!.n).toBe(0); // nothing materialized yet: all real-time
      expect(await run(true, '1m')).toEqual(expected1m);
      expect(await run(true, '5m')).toEqual(expected5m);
      expect(await run(true, '1h')).toEqual(expected1h);
    });

    it('after a refresh, shows new minutes at once (real-time) and late rows in refreshed minutes at the next refresh', async () => {
      const refresh = () =>
        db.pool.query(`CALL refresh_continuous_aggregate('fatigue_scores_1m', $1::timestamptz, $2::timestamptz)`, [
          new Date(T0),
          new Date(T0 + 90 * MIN),
        ]);
      await refresh();
      const materialized = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM fatigue_scores_1m WHERE tenant_id = 't1'`,
      );
      expect(materialized.rows[0]!.n).toBe(4);
      // Ingest after the refresh: a late row into a materialized minute, and a row in a new minute.
      await insert(50_000, 50, 1);
      await insert(100 * MIN + 5_000, 20, 0);
      const ingested = await run(true, '1m');
      expect(ingested).toEqual([
        ...expected1m,
        { bucket_start: at(100 * MIN), score_avg: 20, score_max: 20, level_max: 0, count: 1 },
      ]);
      await refresh();
      const refreshed = await run(true, '1m');
      expect(refreshed[0]).toEqual({ bucket_start: at(0), score_avg: 30, score_max: 50, level_max: 1, count: 3 });
      for (const b of ['1m', '5m', '1h'] as const) expect(await run(true, b)).toEqual(await run(false, b));
    });
  }
});
