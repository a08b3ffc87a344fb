-- Up Migration
-- One B-tree per telemetry row instead of three (issue 13: PostgreSQL's cost per row is the largest
-- single cost of the pipeline). eeg_frames, face_frames, vehicle_frames and game_events had:
--   the primary key (event_id, ts): the read models' idempotency key, led by a random UUID, so every
--     insert lands on a random leaf page (cache misses, page splits, full-page images in the WAL);
--   <table>_session_ts_idx (session_id, ts DESC): what every reader uses (one session's rows by time);
--   <table>_ts_idx (ts DESC): TimescaleDB's default time index, which no query here needs (retention
--     drops whole chunks, compression works per chunk, every read names a session).
-- Now: the primary key (tenant_id, session_id, ts, event_id) alone. It is the idempotency key (a
-- redelivered event has the same four values, and ON CONFLICT DO NOTHING drops it as before), it serves
-- every reader (a session's rows by time, the export's (ts, event_id) keyset), and its inserts append
-- at one place per session. An event id is now unique within its tenant's session, not across them:
-- another tenant's row can never be the conflict target of this tenant's insert, whatever ids it sends.
-- Measured before adopting (`npm run bench -- pg-row`, bench/README.md): PostgreSQL's CPU per row of
-- the EEG and face statements 0.90 and 0.95 of before from this alone, 0.66 and 0.64 together with
-- prepared statements (core/db.ts); index bytes per row 159 -> 118.
-- TimescaleDB path: a unique constraint cannot change while compression is enabled, so each table is
-- decompressed, rekeyed and compressed again (its policy too), now segmented by (tenant_id,
-- session_id) and ordered by (ts DESC, event_id): the key's columns, so an insert into a compressed
-- chunk (a late or replayed event) checks its conflict by decompressing one session's segment, and
-- TimescaleDB has nothing to warn about. Chunks compressed before this migration stay decompressed
-- until the policy's next run. Plain path: the BRIN index on ts (0006) stays for the retention job.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events'] LOOP
    IF vigil_timescale() THEN
      PERFORM remove_compression_policy(t::regclass, if_exists => true);
      PERFORM decompress_chunk(c, if_compressed => true) FROM show_chunks(t::regclass) c;
      EXECUTE format('ALTER TABLE %I SET (timescaledb.compress = false)', t);
    END IF;
    PERFORM vigil_replace_primary_key(t::regclass, 'tenant_id, session_id, ts, event_id');
    EXECUTE format('DROP INDEX IF EXISTS %I', t || '_session_ts_idx');
    EXECUTE format('DROP INDEX IF EXISTS %I', t || '_ts_idx');
    IF vigil_timescale() THEN
      EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
                     t, 'tenant_id, session_id', 'ts DESC, event_id');
      PERFORM add_compression_policy(t::regclass, INTERVAL '7 days', if_not_exists => true);
    END IF;
  END LOOP;
END $$;

-- Down Migration
-- Fails (unique violation) once one event id and ts are stored under two sessions: the narrower key
-- cannot hold both. Remove one of them first.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events'] LOOP
    PERFORM vigil_replace_hypertable_key(t::regclass, 'event_id, ts', 'session_id');
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (session_id, ts DESC)', t || '_session_ts_idx', t);
    IF vigil_timescale() THEN
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (ts DESC)', t || '_ts_idx', t);
    END IF;
  END LOOP;
END $$;
