import type { Pool } from '../core/db';

/**
 * What-if scores (`vigil rescore` output, the `fatigue_scores_whatif` read model, keyed by model
 * version) read like the live ones: raw rows in [from, to), or `date_bin` buckets (whole buckets
 * intersecting the range). Same row shapes as the live scores route.
 */
export async function whatIfRaw(
  pool: Pool,
  model: string,
  sessionId: string,
  tenantId: string,
  from: Date,
  to: Date,
  withFeatures: boolean,
) {
  const { rows } = await pool.query(
    `SELECT ts, window_start_ts, score, level, ocular, driving, eeg, reaction, yawn, baseline_ready, model_version,
            features
       FROM fatigue_scores_whatif
      WHERE model_version = $1 AND session_id = $2 AND tenant_id = $3 AND ts >= $4 AND ts < $5 ORDER BY ts`,
    [model, sessionId, tenantId, from, to],
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

export async function whatIfBucketed(
  pool: Pool,
  model: string,
  sessionId: string,
  tenantId: string,
  from: Date,
  to: Date,
  sizeMs: number,
) {
  const lo = new Date(Math.floor(from.getTime() / sizeMs) * sizeMs);
  const hi = new Date(Math.ceil(to.getTime() / sizeMs) * sizeMs);
  const { rows } = await pool.query(
    `SELECT date_bin($6::interval, ts, 'epoch') AS b, avg(score) AS score_avg, max(score) AS score_max,
            max(level) AS level_max, count(*) AS n
       FROM fatigue_scores_whatif
      WHERE model_version = $1 AND session_id = $2 AND tenant_id = $3 AND ts >= $4 AND ts < $5
      GROUP BY b ORDER BY b`,
    [model, sessionId, tenantId, lo, hi, `${sizeMs / 1000} seconds`],
  );
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
