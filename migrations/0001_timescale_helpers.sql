-- Up Migration
-- TimescaleDB when the server offers it, plain PostgreSQL otherwise (DESIGN section 6).
-- `vigil_timescale()` says which path this database is on; `vigil_hypertable()` turns a table into a
-- hypertable on the TimescaleDB path and does nothing on the plain path (where the table keeps its
-- ordinary time index), so later migrations state their intent once for both paths.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
      -- e.g. offered but not in shared_preload_libraries: stay on the plain path, say why.
      RAISE WARNING 'timescaledb is available but could not be created (%): using plain tables', SQLERRM;
    END;
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
