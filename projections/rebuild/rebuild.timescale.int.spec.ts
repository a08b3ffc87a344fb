import type { Client, PoolClient } from 'pg';
import { testLogger } from '../../test/support/env';
import { startTimescalePglite } from '../../test/support/pglite';
import { migrate } from '../../core/migrate';
import { swapTable } from './swap';
import { createShadowSql, sessionsSwapSql } from './sql';

/**
 * The swap of `rebuildProjection` on the TimescaleDB path (PGlite with TimescaleDB): hypertables
 * cannot be dropped and `fatigue_scores` feeds the continuous aggregate `fatigue_scores_1m`, so the
 * swap refills the live hypertable from the shadow (TRUNCATE + INSERT in the swap transaction); the
 * tables stay hypertables and the aggregate answers from the new rows.
 *
 * Only the swap: PGlite's TimescaleDB build aborted ("RuntimeError: unreachable") on the EEG read
 * model's statement (tried both into the hypertable and into a plain shadow table), so the replay into
 * the shadow is covered by rebuild.int.spec.ts on PostgreSQL.
 */
describe('projections rebuild swap on TimescaleDB (PGlite)', () => {
  let pg: { client: Client; stop: () => Promise<void> };
  const shadow = 'vigil_rebuild_scores_spec';
  const t0 = Date.UTC(2026, 0, 1, 8);
  const scoreRow = (schema: string, session: string, offsetS: number, score: number) =>
    pg.client.query(
      `INSERT INTO ${schema}.fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features,
                                             baseline_ready, model_version)
       VALUES ($1, $2, gen_random_uuid(), 't', $2, $3, 1, '{}', false, 'fatigue-v1')`,
      [session, new Date(t0 + offsetS * 1000), score],
    );

  beforeAll(async () => {
    pg = await startTimescalePglite();
    await migrate({ database: pg.client, log: testLogger() });
  }, 120_000);
  afterAll(() => pg?.stop());

  it('refills fatigue_scores in place: still a hypertable, the aggregate reads the new rows, sessions columns upserted', async () => {
    await scoreRow('public', 's1', 10, 99); // the corrupted live state
    await pg.client.query(
      `INSERT INTO sessions (session_id, tenant_id, score_count, max_score, face_frame_count) VALUES ('s1', 't', 7, 99, 3)`,
    );
    for (const sql of createShadowSql(shadow, ['fatigue_scores', 'sessions'])) await pg.client.query(sql);
    await scoreRow(shadow, 's1', 10, 42.5);
    await scoreRow(shadow, 's1', 70, 61.25);
    await pg.client.query(
      `INSERT INTO ${shadow}.sessions (session_id, tenant_id, score_count, max_score) VALUES ('s1', 't', 2, 61.25)`,
    );

    await pg.client.query('BEGIN');
    const how = await swapTable(pg.client as unknown as PoolClient, shadow, 'fatigue_scores');
    await pg.client.query(
      sessionsSwapSql(shadow, ['score_count', 'max_score'], { score_count: '0', max_score: 'NULL' }),
    );
    await pg.client.query('COMMIT');

    expect(how).toBe('copy');
    const hyper = await pg.client.query(
      `SELECT count(*)::int AS n FROM timescaledb_information.hypertables WHERE hypertable_name = 'fatigue_scores'`,
    );
    expect(hyper.rows[0]).toEqual({ n: 1 });
    const trend = await pg.client.query(
      `SELECT bucket, score_max::float8 AS max, score_count::int AS n FROM fatigue_scores_1m ORDER BY bucket`,
    );
    expect(trend.rows).toEqual([
      { bucket: new Date(t0), max: 42.5, n: 1 },
      { bucket: new Date(t0 + 60_000), max: 61.25, n: 1 },
    ]);
    const s = await pg.client.query(
      `SELECT score_count::int AS scores, max_score::float8 AS max, face_frame_count::int AS face FROM sessions`,
    );
    expect(s.rows).toEqual([{ scores: 2, max: 61.25, face: 3 }]);
  });

  it('swaps an eeg_frames hypertable by copy too (a hypertable cannot be dropped and replaced)', async () => {
    for (const sql of createShadowSql('vigil_rebuild_eeg_spec', ['eeg_frames'])) await pg.client.query(sql);
    await pg.client.query('BEGIN');
    const how = await swapTable(pg.client as unknown as PoolClient, 'vigil_rebuild_eeg_spec', 'eeg_frames');
    await pg.client.query('COMMIT');
    expect(how).toBe('copy');
  });
});
