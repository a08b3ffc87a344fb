-- Up Migration
-- The read models of DESIGN section 6 beside eeg_frames (0002): one table per telemetry stream, the
-- fatigue scores and the alert life cycle, each a hypertable with 1-day chunks on the TimescaleDB path
-- and a plain table with the same columns and time index otherwise; the current state of every alert;
-- the session's live status; and the session reports a job fills later.
--
-- Idempotency keys: (event_id, ts) for event tables (TimescaleDB wants the time column in every unique
-- index), (session_id, ts) for scores (one score per session and window end). Projections insert with
-- ON CONFLICT DO NOTHING and derive counters and state only from the rows really inserted.
-- Avro `float` fields are `real` columns, so a value reads back as it was written.

-- FaceFrame (telemetry.face.v1): one row per frame. Nullable measures are null when not measured.
CREATE TABLE face_frames (
  event_id       uuid        NOT NULL,
  ts             timestamptz NOT NULL,
  tenant_id      text        NOT NULL,
  session_id     text        NOT NULL,
  device_id      text        NOT NULL,
  seq            bigint      NOT NULL,
  face_detected  boolean     NOT NULL,
  eye_closure    real,
  mouth_open     real,
  head_pitch_deg real,
  head_yaw_deg   real,
  head_roll_deg  real,
  PRIMARY KEY (event_id, ts)
);
CREATE INDEX face_frames_session_ts_idx ON face_frames (session_id, ts DESC);
SELECT vigil_hypertable('face_frames', 'ts', INTERVAL '1 day');

-- VehicleFrame (telemetry.vehicle.v1).
CREATE TABLE vehicle_frames (
  event_id      uuid        NOT NULL,
  ts            timestamptz NOT NULL,
  tenant_id     text        NOT NULL,
  session_id    text        NOT NULL,
  device_id     text        NOT NULL,
  seq           bigint      NOT NULL,
  speed_kmh     real        NOT NULL,
  lane_offset_m real,
  steering_deg  real        NOT NULL,
  PRIMARY KEY (event_id, ts)
);
CREATE INDEX vehicle_frames_session_ts_idx ON vehicle_frames (session_id, ts DESC);
SELECT vigil_hypertable('vehicle_frames', 'ts', INTERVAL '1 day');

-- GameEvent (game.events.v1): `kind` is the union branch (LaneDeparture, Collision, StimulusShown,
-- StimulusResponse, StimulusMissed), `details` its fields (e.g. {"stimulus_id": "...", "reaction_ms": 312}).
CREATE TABLE game_events (
  event_id   uuid        NOT NULL,
  ts         timestamptz NOT NULL,
  tenant_id  text        NOT NULL,
  session_id text        NOT NULL,
  device_id  text        NOT NULL,
  seq        bigint      NOT NULL,
  kind       text        NOT NULL,
  details    jsonb       NOT NULL,
  PRIMARY KEY (event_id, ts)
);
CREATE INDEX game_events_session_ts_idx ON game_events (session_id, ts DESC);
SELECT vigil_hypertable('game_events', 'ts', INTERVAL '1 day');

-- FatigueScored (fatigue.scores.v1): ts is the window end. The primary key (session_id, ts) is both the
-- idempotency key and the time index (a b-tree serves `ORDER BY ts DESC` by scanning backwards).
CREATE TABLE fatigue_scores (
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
  model_version   text        NOT NULL,
  PRIMARY KEY (session_id, ts)
);
SELECT vigil_hypertable('fatigue_scores', 'ts', INTERVAL '1 day');

-- AlertEvent (fatigue.alerts.v1): the life cycle of alerts, one row per event. `type` is the union
-- branch; `level` is set by AlertRaised and AlertEscalated, `reason` is the alert reason of AlertRaised
-- and the clear reason of AlertCleared, `escalation` the count of AlertEscalated.
CREATE TABLE alert_events (
  event_id        uuid        NOT NULL,
  ts              timestamptz NOT NULL,
  tenant_id       text        NOT NULL,
  session_id      text        NOT NULL,
  alert_id        text        NOT NULL,
  type            text        NOT NULL,
  level           smallint,
  reason          text,
  score           real,
  escalation      integer,
  acknowledged_by text,
  PRIMARY KEY (event_id, ts)
);
CREATE INDEX alert_events_session_ts_idx ON alert_events (session_id, ts DESC);
CREATE INDEX alert_events_alert_ts_idx ON alert_events (alert_id, ts);
SELECT vigil_hypertable('alert_events', 'ts', INTERVAL '1 day');

-- Current state of each alert, folded from its events. Every field only moves one way (level and
-- escalations up, timestamps set once), so the fold does not depend on the order events are applied.
-- level, reason and raised_at stay null until AlertRaised has been seen.
CREATE TABLE alerts (
  alert_id        text        PRIMARY KEY,
  tenant_id       text        NOT NULL,
  session_id      text        NOT NULL,
  level           smallint,
  reason          text,
  score           real,
  status          text        NOT NULL CHECK (status IN ('active', 'acknowledged', 'cleared')),
  raised_at       timestamptz,
  escalations     integer     NOT NULL DEFAULT 0,
  acknowledged_at timestamptz,
  acknowledged_by text,
  cleared_at      timestamptz,
  clear_reason    text,
  last_event_ts   timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_session_raised_idx ON alerts (session_id, raised_at DESC);
-- `/v1/alerts?state=active`: the open alerts of a tenant, newest first.
CREATE INDEX alerts_tenant_open_idx ON alerts (tenant_id, raised_at DESC) WHERE status <> 'cleared';

-- The session's live status beside its EEG counters (0002): frame counts per stream, the newest and
-- highest score and level (last_* guarded by last_score_at so a replay never moves them back), alert
-- counts (open = active or acknowledged), and the newest event time seen about the session at all.
ALTER TABLE sessions
  ADD COLUMN face_frame_count    bigint   NOT NULL DEFAULT 0,
  ADD COLUMN vehicle_frame_count bigint   NOT NULL DEFAULT 0,
  ADD COLUMN game_event_count    bigint   NOT NULL DEFAULT 0,
  ADD COLUMN score_count         bigint   NOT NULL DEFAULT 0,
  ADD COLUMN last_score          real,
  ADD COLUMN last_level          smallint,
  ADD COLUMN last_score_at       timestamptz,
  ADD COLUMN max_score           real,
  ADD COLUMN max_level           smallint,
  ADD COLUMN alert_count         integer  NOT NULL DEFAULT 0,
  ADD COLUMN open_alert_count    integer  NOT NULL DEFAULT 0,
  ADD COLUMN max_alert_level     smallint,
  ADD COLUMN last_alert_at       timestamptz,
  ADD COLUMN last_seen_at        timestamptz;
-- Live sessions of a tenant, most recently seen first.
CREATE INDEX sessions_tenant_last_seen_idx ON sessions (tenant_id, last_seen_at DESC);

-- One report per ended session, written by the report job (not by a projection). `report` holds the
-- full document (per-minute trend, components, alert list); the columns are what lists filter and sort on.
-- level1_s / level2_s: event-time seconds spent at level >= 1 / at level 2.
CREATE TABLE session_reports (
  session_id       text        PRIMARY KEY,
  tenant_id        text        NOT NULL,
  driver_id        text,
  vehicle_id       text,
  started_at       timestamptz,
  ended_at         timestamptz,
  duration_s       integer,
  model_version    text,
  score_avg        real,
  score_max        real,
  level_max        smallint,
  level1_s         integer,
  level2_s         integer,
  alert_count      integer     NOT NULL DEFAULT 0,
  microsleep_count integer     NOT NULL DEFAULT 0,
  report           jsonb       NOT NULL,
  generated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_reports_tenant_started_idx ON session_reports (tenant_id, started_at DESC);
CREATE INDEX session_reports_driver_started_idx ON session_reports (tenant_id, driver_id, started_at DESC);

-- Down Migration
DROP TABLE IF EXISTS session_reports;
DROP INDEX IF EXISTS sessions_tenant_last_seen_idx;
ALTER TABLE sessions
  DROP COLUMN IF EXISTS face_frame_count,
  DROP COLUMN IF EXISTS vehicle_frame_count,
  DROP COLUMN IF EXISTS game_event_count,
  DROP COLUMN IF EXISTS score_count,
  DROP COLUMN IF EXISTS last_score,
  DROP COLUMN IF EXISTS last_level,
  DROP COLUMN IF EXISTS last_score_at,
  DROP COLUMN IF EXISTS max_score,
  DROP COLUMN IF EXISTS max_level,
  DROP COLUMN IF EXISTS alert_count,
  DROP COLUMN IF EXISTS open_alert_count,
  DROP COLUMN IF EXISTS max_alert_level,
  DROP COLUMN IF EXISTS last_alert_at,
  DROP COLUMN IF EXISTS last_seen_at;
DROP TABLE IF EXISTS alerts;
DROP TABLE IF EXISTS alert_events;
DROP TABLE IF EXISTS fatigue_scores;
DROP TABLE IF EXISTS game_events;
DROP TABLE IF EXISTS vehicle_frames;
DROP TABLE IF EXISTS face_frames;
