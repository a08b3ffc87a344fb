import type { Pool } from '../core/db';

/**
 * The score queries of `GET /v1/sessions/:id/scores`, for the live scores (`fatigue_scores`) and for
 * a what-if model's (`vigil rescore` output, `fatigue_scores_whatif`, keyed by model version): the
 * same row shapes either way, so a board can overlay one on the other.
 */
export type ScoreBucket = '1m' | '5m' | '1h';

const MINUTE = 60_000;
export const BUCKET_MS: Record<ScoreBucket, number> = { '1m': MINUTE, '5m': 5 * MINUTE, '1h': 60 * MINUTE };

/** The table and filter of one model's scores: the live model, or the what-if model `model`. */
function source(model: string | undefined, firstParam: number) {
  return model === undefined
    ? { table: 'fatigue_scores', filter: '', params: [] as string[] }
    : { table: 'fatigue_scores_whatif', filter: ` AND model_version = $${firstParam}`, params: [model] };
}

/** Raw scores of a session in [from, to), in ts order. */
export async function rawScores(
  pool: Pool,
  sessionId: string,
  tenantId: string,
  from: Date,
  to: Date,
  withFeatures: boolean,
  model?: string,
) {
  const s = source(model, 5);
  const { rows } = await pool.query(
    `SELECT ts, window_start_ts, score, level, ocular, driving, eeg, reaction, yawn, baseline_ready, model_version,
            features
       FROM ${s.table} WHERE session_id = $1 AND tenant_id = $2 AND ts >= $3 AND ts < $4${s.filter} ORDER BY ts`,
    [sessionId, tenantId, from, to, ...s.params],
  );
  return rows.map((x) => ({
    ts: x.ts.toISOString(),
    window_start_ts: x.window_start_ts.toISOString(),
    score: x.score,
    level: x.level,
    components: { ocular: x.ocular, driving: x.driving, eeg: x.eeg, reaction: x.reaction, yawn: x.yawn },
    baseline_ready: x.baseline_ready,
    model_version: x.model_version,
    ...(withFeatures ? { features: x.features } : {}),
  }));
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Bucketed scores of a session in whole buckets intersecting [from, to) (epoch-aligned, as
 * time_bucket and date_bin with origin epoch both are for these sizes). The live model on
 * TimescaleDB reads the continuous aggregate `fatigue_scores_1m` (5m and 1h re-aggregated from it,
 * averages weighted by count); otherwise `date_bin` over the raw table (the plain `fatigue_scores_1m`
 * view could not use the time index, and what-if scores have no aggregate).
 */
export async function bucketed(
  pool: Pool,
  timescale: boolean,
  sessionId: string,
  tenantId: string,
  from: Date,
  to: Date,
  bucket: ScoreBucket,
  model?: string,
) {
  const size = BUCKET_MS[bucket];
  const lo = new Date(Math.floor(from.getTime() / size) * size);
  const hi = new Date(Math.ceil(to.getTime() / size) * size);
  const interval = `${size / 1000} seconds`;
  const s = source(model, 6);
  const sql =
    !timescale || model !== undefined
      ? `SELECT date_bin($5::interval, ts, 'epoch') AS b, avg(score) AS score_avg, max(score) AS score_max,
              max(level) AS level_max, count(*) AS n
         FROM ${s.table} WHERE session_id = $1 AND tenant_id = $2 AND ts >= $3 AND ts < $4${s.filter}
        GROUP BY b ORDER BY b`
      : bucket === '1m'
        ? `SELECT bucket AS b, score_avg, score_max, level_max, score_count AS n
           FROM fatigue_scores_1m WHERE session_id = $1 AND tenant_id = $2 AND bucket >= $3 AND bucket < $4
            AND $5::interval IS NOT NULL ORDER BY b`
        : `SELECT time_bucket($5::interval, bucket) AS b, sum(score_avg * score_count) / sum(score_count) AS score_avg,
                max(score_max) AS score_max, max(level_max) AS level_max, sum(score_count) AS n
           FROM fatigue_scores_1m WHERE session_id = $1 AND tenant_id = $2 AND bucket >= $3 AND bucket < $4
          GROUP BY 1 ORDER BY 1`;
  const { rows } = await pool.query(sql, [sessionId, tenantId, lo, hi, interval, ...s.params]);
  return rows.map((x) => ({
    bucket_start: (x.b as Date).toISOString(),
    score_avg: round2(Number(x.score_avg)),
    score_max: Number(x.score_max),
    level_max: Number(x.level_max),
    count: Number(x.n),
  }));
}

/** The model versions that scored a session: the live one(s) and every what-if model, with counts. */
export async function modelsOf(pool: Pool, sessionId: string, tenantId: string) {
  const { rows } = await pool.query(
    `SELECT model_version, 'live' AS kind, count(*)::int AS n FROM fatigue_scores
      WHERE session_id = $1 AND tenant_id = $2 GROUP BY model_version
     UNION ALL
     SELECT model_version, 'whatif' AS kind, count(*)::int AS n FROM fatigue_scores_whatif
      WHERE session_id = $1 AND tenant_id = $2 GROUP BY model_version
     ORDER BY kind, model_version`,
    [sessionId, tenantId],
  );
  return rows.map((r) => ({
    model_version: r.model_version as string,
    kind: r.kind as 'live' | 'whatif',
    scores: r.n as number,
  }));
}
