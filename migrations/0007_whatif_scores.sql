-- Up Migration
-- What-if scores: the output of `vigil rescore` (another fatigue model over history, topic
-- fatigue.scores.whatif.v1), kept apart from the live scores so analysts can compare models.
--
-- Why a separate table: `fatigue_scores` is keyed (session_id, ts), one score per session and window
-- end, so a second model version's score of the same window would collide with the live one (and,
-- with ON CONFLICT DO NOTHING, silently vanish or, worse, be taken for the live score). Alternative
-- models therefore never enter `fatigue_scores` (the live `scores` read model reads only the live
-- topic, which only the live processor writes); they land here, keyed by (model_version, session_id,
-- ts), so any number of models can score the same windows side by side. Same columns as
-- `fatigue_scores`; the what-if read model does not touch `sessions` (its status stays the live one).
--
-- TimescaleDB path: a hypertable with 1-day chunks, compressed after 7 days (segment by session_id,
-- order by ts DESC) and dropped after 365 days, like the live scores. Plain path: a plain table whose
-- primary key serves per-model, per-session time-range reads.
CREATE TABLE fatigue_scores_whatif (
  model_version   text        NOT NULL,
  session_id      text        NOT NULL,
  ts              timestamptz NOT NULL,
  event_id        uuid        NOT NULL,
  tenant_id       text        NOT NULL,
  window_start_ts timestamptz NOT NULL,
  score           real        NOT NULL,
  level           smallint    NOT NULL,
  ocular          real,
  driving         real,
  eeg             real,
  reaction        real,
  yawn            real,
  features        jsonb       NOT NULL,
  baseline_ready  boolean     NOT NULL,
  PRIMARY KEY (model_version, session_id, ts)
);
-- A session's what-if scores across models, newest first (the comparison reads).
CREATE INDEX fatigue_scores_whatif_session_ts_idx ON fatigue_scores_whatif (session_id, ts DESC);
SELECT vigil_hypertable('fatigue_scores_whatif', 'ts', INTERVAL '1 day');

DO $$
BEGIN
  IF vigil_timescale() THEN
    ALTER TABLE fatigue_scores_whatif SET (timescaledb.compress, timescaledb.compress_segmentby = 'session_id',
                                           timescaledb.compress_orderby = 'ts DESC');
    PERFORM add_compression_policy('fatigue_scores_whatif', INTERVAL '7 days', if_not_exists => true);
    PERFORM add_retention_policy('fatigue_scores_whatif', INTERVAL '365 days', if_not_exists => true);
  END IF;
END $$;

-- Down Migration
DO $$
BEGIN
  IF vigil_timescale() THEN
    PERFORM remove_retention_policy('fatigue_scores_whatif', if_exists => true);
    PERFORM remove_compression_policy('fatigue_scores_whatif', if_exists => true);
  END IF;
END $$;
DROP TABLE IF EXISTS fatigue_scores_whatif;
