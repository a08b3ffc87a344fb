-- Up Migration
-- Tenant identity in the read models (issue 11, "session ownership"): the pair (tenant_id, session_id)
-- identifies a session, and (tenant_id, alert_id) an alert (alert ids derive from the session id). The
-- primary keys of the session-keyed read models gain tenant_id, so a row of one tenant can never be
-- the conflict target of another tenant's upsert (ON CONFLICT now names the pair), whatever ids an
-- event carries:
--
--   sessions              (session_id)                   -> (tenant_id, session_id)
--   session_reports       (session_id)                   -> (tenant_id, session_id)
--   alerts                (alert_id)                     -> (tenant_id, alert_id)
--   fatigue_scores        (session_id, ts)               -> (tenant_id, session_id, ts)
--   fatigue_scores_whatif (model_version, session_id, ts) -> (model_version, tenant_id, session_id, ts)
--
-- Event tables keyed (event_id, ts) keep their keys: an event id is one event of one tenant.
-- Every key of a hypertable keeps its time column (TimescaleDB wants it in every unique index).
-- TimescaleDB path: a unique constraint cannot change while a hypertable has compression enabled, so
-- the two score tables are decompressed, the key changed and compression (and its policy) set again,
-- segmented by session_id as before. Existing rows already satisfy the new keys (they are wider).
CREATE OR REPLACE FUNCTION vigil_replace_primary_key(tbl regclass, cols text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  pk name;
BEGIN
  SELECT conname INTO pk FROM pg_constraint WHERE conrelid = tbl AND contype = 'p';
  IF pk IS NOT NULL THEN
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, pk);
  END IF;
  EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (%s)', tbl, cols);
END $$;

CREATE OR REPLACE FUNCTION vigil_replace_hypertable_key(tbl regclass, cols text, segment_by text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF vigil_timescale() THEN
    PERFORM remove_compression_policy(tbl, if_exists => true);
    PERFORM decompress_chunk(c, if_compressed => true) FROM show_chunks(tbl) c;
    EXECUTE format('ALTER TABLE %s SET (timescaledb.compress = false)', tbl);
  END IF;
  PERFORM vigil_replace_primary_key(tbl, cols);
  IF vigil_timescale() THEN
    EXECUTE format('ALTER TABLE %s SET (timescaledb.compress, timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
                   tbl, segment_by, 'ts DESC');
    PERFORM add_compression_policy(tbl, INTERVAL '7 days', if_not_exists => true);
  END IF;
END $$;

SELECT vigil_replace_primary_key('sessions', 'tenant_id, session_id');
SELECT vigil_replace_primary_key('session_reports', 'tenant_id, session_id');
SELECT vigil_replace_primary_key('alerts', 'tenant_id, alert_id');
SELECT vigil_replace_hypertable_key('fatigue_scores', 'tenant_id, session_id, ts', 'session_id');
SELECT vigil_replace_hypertable_key('fatigue_scores_whatif', 'model_version, tenant_id, session_id, ts', 'session_id');

-- Down Migration
-- Fails (unique violation) once two tenants hold rows under one session or alert id: such rows cannot
-- share the narrower keys. Remove one tenant's rows first.
SELECT vigil_replace_hypertable_key('fatigue_scores_whatif', 'model_version, session_id, ts', 'session_id');
SELECT vigil_replace_hypertable_key('fatigue_scores', 'session_id, ts', 'session_id');
SELECT vigil_replace_primary_key('alerts', 'alert_id');
SELECT vigil_replace_primary_key('session_reports', 'session_id');
SELECT vigil_replace_primary_key('sessions', 'session_id');
DROP FUNCTION IF EXISTS vigil_replace_hypertable_key(regclass, text, text);
DROP FUNCTION IF EXISTS vigil_replace_primary_key(regclass, text);
