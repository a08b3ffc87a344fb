import type { Client } from 'pg';
import type { Pool } from '../core/db';
import { migrate } from '../core/migrate';
import { startTimescalePglite } from '../test/support/pglite';
import { testLogger } from '../test/support/env';
import { bucketed } from './routes/scores';

/**
 * The bucketed scores query on TimescaleDB (PGlite with the extension): the continuous aggregate
 * `fatigue_scores_1m` path answers exactly what the plain `date_bin` path answers, for 1m, 5m and 1h.
 */
describe('bucketed scores on TimescaleDB (continuous aggregate)', () => {
  let pg: { client: Client; stop: () => Promise<void> };
  const T0 = Date.UTC(2026, 2, 1, 8);
  const MIN = 60_000;

  beforeAll(async () => {
    pg = await startTimescalePglite();
    await migrate({ database: pg.client, log: testLogger() });
    const scores: [number, number, number][] = [
      [5_000, 10, 0],
      [35_000, 30, 0],
      [65_000, 60, 1],
      [95_000, 80, 2],
      [300_000, 40, 0],
      [3_600_000 + 5_000, 90, 2],
    ];
    for (const [ms, score, level] of scores) {
      await pg.client.query(
        `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features,
           baseline_ready, model_version)
         VALUES ('s1', $1, gen_random_uuid(), 't1', $1, $2, $3, '{}', true, 'fatigue-v1')`,
        [new Date(T0 + ms), score, level],
      );
    }
    // Another tenant's score in the same minute must not count.
    await pg.client.query(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features,
         baseline_ready, model_version)
       VALUES ('s1', $1, gen_random_uuid(), 't2', $1, 100, 2, '{}', true, 'fatigue-v1')`,
      [new Date(T0 + 6_000)],
    );
  }, 120_000);
  afterAll(() => pg?.stop());

  const run = (timescale: boolean, bucket: '1m' | '5m' | '1h') =>
    bucketed(pg.client as unknown as Pool, timescale, 's1', 't1', new Date(T0), new Date(T0 + 2 * 3_600_000), bucket);
  const at = (ms: number) => new Date(T0 + ms).toISOString();

  it('reads 1m buckets from the continuous aggregate', async () => {
    expect(await run(true, '1m')).toEqual([
      { bucket_start: at(0), score_avg: 20, score_max: 30, level_max: 0, count: 2 },
      { bucket_start: at(MIN), score_avg: 70, score_max: 80, level_max: 2, count: 2 },
      { bucket_start: at(5 * MIN), score_avg: 40, score_max: 40, level_max: 0, count: 1 },
      { bucket_start: at(60 * MIN), score_avg: 90, score_max: 90, level_max: 2, count: 1 },
    ]);
  });

  it('re-aggregates 5m and 1h from it, averages weighted by count', async () => {
    expect(await run(true, '5m')).toEqual([
      { bucket_start: at(0), score_avg: 45, score_max: 80, level_max: 2, count: 4 },
      { bucket_start: at(5 * MIN), score_avg: 40, score_max: 40, level_max: 0, count: 1 },
      { bucket_start: at(60 * MIN), score_avg: 90, score_max: 90, level_max: 2, count: 1 },
    ]);
    expect(await run(true, '1h')).toEqual([
      { bucket_start: at(0), score_avg: 44, score_max: 80, level_max: 2, count: 5 },
      { bucket_start: at(60 * MIN), score_avg: 90, score_max: 90, level_max: 2, count: 1 },
    ]);
  });

  it('answers the same as the plain date_bin path', async () => {
    for (const b of ['1m', '5m', '1h'] as const) expect(await run(true, b)).toEqual(await run(false, b));
  });
});
