-- Up Migration
-- TimescaleDB when the server can create it, plain PostgreSQL otherwise (DESIGN section 6).
-- `vigil_timescale()` says which path this database is on; `vigil_hypertable()` turns a table into a
-- hypertable on the TimescaleDB path and does nothing on the plain path (where the table keeps its
-- ordinary time index), so later migrations state their intent once for both paths.
--
-- The path is decided by what works, not by what is installed: the extension's files can be installed
-- (e.g. Debian's package, or deploy/local/timescaledb.sh) while the server does not preload its
-- library, and then CREATE EXTENSION ends the session with FATAL "must be preloaded", which no
-- EXCEPTION block can catch. So it is attempted only when the extension is available AND `timescaledb` is in
-- shared_preload_libraries. Otherwise: plain tables with a WARNING that says what to change, or an
-- error when the session setting `vigil.timescaledb` is 'required' (VIGIL_TIMESCALEDB, set by
-- `vigil migrate`).
DO $$
DECLARE
  required boolean := coalesce(current_setting('vigil.timescaledb', true), '') = 'required';
  available boolean := EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb');
  preloaded boolean := 'timescaledb' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','));
  why text;
BEGIN
  IF available AND preloaded THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
      why := format('timescaledb is preloaded but CREATE EXTENSION failed (%s)', SQLERRM);
    END;
  ELSIF available THEN
    why := 'timescaledb is installed but not preloaded: add it to shared_preload_libraries in postgresql.conf '
        || '(shared_preload_libraries = ''timescaledb'') and restart the server';
  ELSE
    why := 'timescaledb is not installed on this server';
  END IF;
  IF why IS NOT NULL THEN
    IF required THEN
      RAISE EXCEPTION 'VIGIL_TIMESCALEDB=required: %', why;
    ELSIF available THEN
      RAISE WARNING '%: using plain tables', why;
    END IF;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION vigil_timescale() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;

CREATE OR REPLACE FUNCTION vigil_hypertable(tbl regclass, time_column name, chunk interval) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF vigil_timescale() THEN
    EXECUTE format('SELECT create_hypertable(%L, by_range(%L, %L::interval), if_not_exists => true)', tbl, time_column, chunk);
  END IF;
END $$;

-- Down Migration
DROP FUNCTION IF EXISTS vigil_hypertable(regclass, name, interval);
DROP FUNCTION IF EXISTS vigil_timescale();
