-- Up Migration
-- TimescaleDB policies of DESIGN section 6, and the per-minute score trend `fatigue_scores_1m`.
--
-- TimescaleDB path: every hypertable compresses its chunks after 7 days (segment by session_id, so a
-- session's rows stay together; order by ts DESC, as the API reads them); raw telemetry is dropped
-- after 90 days, scores and alert events after 365 days (the `alerts` and `sessions` state and the
-- reports stay). `fatigue_scores_1m` is a continuous aggregate refreshed every minute over the last
-- day, real-time (materialized_only = false), so the newest minute is there before its refresh.
-- It is created WITH NO DATA, which TimescaleDB allows inside the migration's transaction; the
-- refresh policy fills it.
--
-- Plain path: no policies; `fatigue_scores_1m` is an ordinary view with the same columns, so readers
-- query one name on both paths.
DO $$
DECLARE
  t text;
BEGIN
  IF vigil_timescale() THEN
    FOREACH t IN ARRAY ARRAY['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events', 'fatigue_scores', 'alert_events'] LOOP
      EXECUTE format(
        'ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
        t, 'session_id', 'ts DESC');
      PERFORM add_compression_policy(t::regclass, INTERVAL '7 days', if_not_exists => true);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events'] LOOP
      PERFORM add_retention_policy(t::regclass, INTERVAL '90 days', if_not_exists => true);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['fatigue_scores', 'alert_events'] LOOP
      PERFORM add_retention_policy(t::regclass, INTERVAL '365 days', if_not_exists => true);
    END LOOP;

    CREATE MATERIALIZED VIEW fatigue_scores_1m
      WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
      SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, tenant_id, session_id,
             avg(score) AS score_avg, max(score) AS score_max, max(level) AS level_max, count(*) AS score_count
      FROM fatigue_scores
      GROUP BY bucket, tenant_id, session_id
      WITH NO DATA;
    PERFORM add_continuous_aggregate_policy('fatigue_scores_1m',
      start_offset => INTERVAL '1 day', end_offset => INTERVAL '1 minute',
      schedule_interval => INTERVAL '1 minute', if_not_exists => true);
  ELSE
    CREATE VIEW fatigue_scores_1m AS
      SELECT date_trunc('minute', ts) AS bucket, tenant_id, session_id,
             avg(score) AS score_avg, max(score) AS score_max, max(level) AS level_max, count(*) AS score_count
      FROM fatigue_scores
      GROUP BY 1, tenant_id, session_id;
  END IF;
END $$;

-- Down Migration
DO $$
DECLARE
  t text;
BEGIN
  IF vigil_timescale() THEN
    DROP MATERIALIZED VIEW IF EXISTS fatigue_scores_1m;
    -- eeg_frames (0002) outlives this migration: leave it as 0002 made it.
    PERFORM remove_retention_policy('eeg_frames', if_exists => true);
    PERFORM remove_compression_policy('eeg_frames', if_exists => true);
    PERFORM decompress_chunk(c, if_compressed => true) FROM show_chunks('eeg_frames') c;
    ALTER TABLE eeg_frames SET (timescaledb.compress = false);
    FOREACH t IN ARRAY ARRAY['face_frames', 'vehicle_frames', 'game_events', 'fatigue_scores', 'alert_events'] LOOP
      PERFORM remove_retention_policy(t::regclass, if_exists => true);
      PERFORM remove_compression_policy(t::regclass, if_exists => true);
    END LOOP;
  ELSE
    DROP VIEW IF EXISTS fatigue_scores_1m;
  END IF;
END $$;
