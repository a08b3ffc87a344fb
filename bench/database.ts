import type { Pool } from 'pg';
import { bucketed } from '../api/score-queries';
import { round, spread, type Spread } from './lib';

/**
 * What a benchmark's database is, for its results: TimescaleDB (with its version) or plain PostgreSQL,
 * read from the migrated database itself (`vigil_timescale()`), so a result never claims a path it did
 * not run on.
 */
export async function describeDatabase(pool: Pick<Pool, 'query'>): Promise<{ timescale: boolean; label: string }> {
  const { rows } = await pool.query<{ on: boolean; pg: string; ts: string | null }>(
    `SELECT vigil_timescale() AS on, current_setting('server_version') AS pg,
            (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS ts`,
  );
  const r = rows[0]!;
  return r.on
    ? { timescale: true, label: `TimescaleDB ${r.ts} on PostgreSQL ${r.pg} (read models in hypertables)` }
    : { timescale: false, label: `plain PostgreSQL ${r.pg} (no TimescaleDB: plain tables)` };
}

/**
 * The API's bucketed scores query (`bucketed`, as `/v1/sessions/:id/scores?bucket=` runs it) both
 * ways over the same range: from the continuous aggregate `fatigue_scores_1m` and by `date_bin` over
 * the raw `fatigue_scores`. ROUNDS rounds of REPS calls each way, alternating; per round the median
 * wall-clock ms per call (client to server and back, same machine). Checks both answer the same.
 */
export async function compareBucketQueries(
  pool: Pool,
  q: { sessionId: string; tenantId: string; from: Date; to: Date; bucket: '1m' | '5m' | '1h' },
  rounds = 3,
  reps = 15,
): Promise<{ buckets: number; same_answer: boolean; cagg_ms: Spread; date_bin_ms: Spread; speedup: Spread }> {
  const call = (timescale: boolean) => bucketed(pool, timescale, q.sessionId, q.tenantId, q.from, q.to, q.bucket);
  const cagg = await call(true);
  const raw = await call(false);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const caggMs: number[] = [];
  const rawMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < reps; i++) {
      let t = performance.now();
      await call(true);
      a.push(performance.now() - t);
      t = performance.now();
      await call(false);
      b.push(performance.now() - t);
    }
    caggMs.push(round(median(a), 2));
    rawMs.push(round(median(b), 2));
  }
  return {
    buckets: cagg.length,
    same_answer: JSON.stringify(cagg) === JSON.stringify(raw),
    cagg_ms: spread(caggMs),
    date_bin_ms: spread(rawMs),
    speedup: spread(rawMs.map((v, i) => round(v / caggMs[i]!, 2))),
  };
}
