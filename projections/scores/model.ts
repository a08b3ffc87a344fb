import type { FatigueScored } from '../../schemas/types';
import { SESSION_LOCK_ORDER, columnValues, unnestOf, type Column } from '../columns';
import { isoOf, type ProjectedRecord, type ReadModel } from '../model';

/** `fatigue_scores` columns, in table order, from FatigueScored (fatigue.scores.v1); ts = window end. */
export const scoreColumns: Column<FatigueScored>[] = [
  { name: 'session_id', type: 'text', of: (e) => e.session_id },
  { name: 'ts', type: 'timestamptz', of: (e) => isoOf(e.ts) },
  { name: 'event_id', type: 'uuid', of: (e) => e.event_id },
  { name: 'tenant_id', type: 'text', of: (e) => e.tenant_id },
  { name: 'window_start_ts', type: 'timestamptz', of: (e) => isoOf(e.window_start_ts) },
  { name: 'score', type: 'real', of: (e) => e.score },
  { name: 'level', type: 'smallint', of: (e) => e.level },
  { name: 'ocular', type: 'real', of: (e) => e.components.ocular },
  { name: 'driving', type: 'real', of: (e) => e.components.driving },
  { name: 'eeg', type: 'real', of: (e) => e.components.eeg },
  { name: 'reaction', type: 'real', of: (e) => e.components.reaction },
  { name: 'yawn', type: 'real', of: (e) => e.components.yawn },
  { name: 'features', type: 'jsonb', of: (e) => JSON.stringify(e.features) },
  { name: 'baseline_ready', type: 'boolean', of: (e) => e.baseline_ready },
  { name: 'model_version', type: 'text', of: (e) => e.model_version },
];

/**
 * One statement per batch: the scores go in as one multi-row insert, idempotent by (tenant_id,
 * session_id, ts); from the rows really inserted, per (tenant_id, session_id), the session's score count, maximum score and level, last_seen_at,
 * and its last score and level, which move only to a newer window (`last_score_at` guard): a replay,
 * a late score or a re-scored older window never moves "last" backwards.
 */
const scoresSql = `WITH ins AS (
  INSERT INTO fatigue_scores (${scoreColumns.map((c) => c.name).join(', ')})
  SELECT * FROM ${unnestOf(scoreColumns)}
  ON CONFLICT DO NOTHING
  RETURNING session_id, tenant_id, ts, score, level),
per AS (
  SELECT session_id, tenant_id, count(*) AS n, max(ts) AS last_ts,
         (array_agg(score ORDER BY ts DESC))[1] AS last_score, (array_agg(level ORDER BY ts DESC))[1] AS last_level,
         max(score) AS max_score, max(level) AS max_level
  FROM ins GROUP BY tenant_id, session_id)
INSERT INTO sessions (session_id, tenant_id, score_count, last_score, last_level, last_score_at, max_score, max_level, last_seen_at)
SELECT session_id, tenant_id, n, last_score, last_level, last_ts, max_score, max_level, last_ts FROM per ORDER BY ${SESSION_LOCK_ORDER}
ON CONFLICT (tenant_id, session_id) DO UPDATE SET
  score_count = sessions.score_count + EXCLUDED.score_count,
  last_score = CASE WHEN sessions.last_score_at IS NULL OR EXCLUDED.last_score_at > sessions.last_score_at
                    THEN EXCLUDED.last_score ELSE sessions.last_score END,
  last_level = CASE WHEN sessions.last_score_at IS NULL OR EXCLUDED.last_score_at > sessions.last_score_at
                    THEN EXCLUDED.last_level ELSE sessions.last_level END,
  last_score_at = GREATEST(sessions.last_score_at, EXCLUDED.last_score_at),
  max_score = GREATEST(sessions.max_score, EXCLUDED.max_score),
  max_level = GREATEST(sessions.max_level, EXCLUDED.max_level),
  last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at),
  updated_at = now()`;

/** `fatigue_scores` rows and the sessions' score status from `fatigue.scores.v1`. */
export const scoresModel: ReadModel = {
  name: 'scores',
  topics: ['scores'],
  writes: {
    tables: [{ name: 'fatigue_scores', timeColumn: 'ts' }],
    sessionColumns: ['score_count', 'last_score', 'last_level', 'last_score_at', 'max_score', 'max_level'],
    // The counters and last/max of the sessions' scores, as the statement above keeps them.
    seed: [
      `INSERT INTO sessions (session_id, tenant_id, score_count, last_score, last_level, last_score_at, max_score, max_level, last_seen_at)
SELECT session_id, tenant_id, count(*), (array_agg(score ORDER BY ts DESC))[1], (array_agg(level ORDER BY ts DESC))[1],
       max(ts), max(score), max(level), max(ts)
FROM fatigue_scores GROUP BY tenant_id, session_id ORDER BY ${SESSION_LOCK_ORDER}`,
    ],
  },
  project(records) {
    if (records.length === 0) return [];
    const events = (records as ProjectedRecord<FatigueScored>[]).map((r) => r.value);
    return [{ text: scoresSql, values: columnValues(scoreColumns, events) }];
  },
};
