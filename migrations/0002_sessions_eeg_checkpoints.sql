-- Up Migration
-- Where each projection stands: the next offset to read per (topic, partition). Written in the same
-- transaction as the rows it covers, so a projection resumes exactly where its last commit ended.
CREATE TABLE projection_checkpoints (
  projection  text        NOT NULL,
  topic       text        NOT NULL,
  partition   integer     NOT NULL,
  next_offset bigint      NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, topic, partition)
);

-- Current state and counters of each session (from sessions.v1 and the telemetry topics).
CREATE TABLE sessions (
  session_id      text        PRIMARY KEY,
  tenant_id       text        NOT NULL,
  driver_id       text,
  vehicle_id      text,
  status          text        NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'active', 'ended')),
  started_at      timestamptz,
  ended_at        timestamptz,
  end_reason      text,
  eeg_frame_count bigint      NOT NULL DEFAULT 0,
  first_ts        timestamptz,
  last_ts         timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_tenant_started_idx ON sessions (tenant_id, started_at DESC);

-- EEG band powers, one row per EegBandPower event. (event_id, ts) is the idempotency key; it
-- includes ts because TimescaleDB requires the time column in every unique index.
CREATE TABLE eeg_frames (
  event_id  uuid        NOT NULL,
  ts        timestamptz NOT NULL,
  tenant_id text        NOT NULL,
  session_id text       NOT NULL,
  device_id text        NOT NULL,
  seq       bigint      NOT NULL,
  channels  jsonb       NOT NULL,
  PRIMARY KEY (event_id, ts)
);
CREATE INDEX eeg_frames_session_ts_idx ON eeg_frames (session_id, ts DESC);
SELECT vigil_hypertable('eeg_frames', 'ts', INTERVAL '1 day');

-- Down Migration
DROP TABLE IF EXISTS eeg_frames;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS projection_checkpoints;
