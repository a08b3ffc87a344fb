-- Up Migration
-- Alert webhooks per tenant (the `alert-webhook` job) and what was delivered where. Plain tables on
-- both paths.
--
-- `secret` is kept in clear text: the job needs it to sign each body with HMAC-SHA256
-- (`Vigil-Signature: t=<unix s>,v1=<hex>`); `vigil webhooks add` prints it once. Removing a webhook
-- sets active = false, so its delivery history stays.
CREATE TABLE tenant_webhooks (
  webhook_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id  text        NOT NULL CHECK (tenant_id <> ''),
  url        text        NOT NULL CHECK (url ~ '^https?://'),
  secret     text        NOT NULL CHECK (length(secret) >= 16),
  active     boolean     NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_webhooks_tenant_active_idx ON tenant_webhooks (tenant_id) WHERE active;

-- One row per (alert event, webhook): the idempotency key of a delivery. `delivered_at` set = a 2xx
-- was received (a later retry of the job skips it); `failed_at` set = a permanent refusal (a 4xx other
-- than 408/429), not retried. `attempts` counts HTTP attempts; `last_status` is null after a network
-- error or timeout, whose message is in `last_error`.
CREATE TABLE webhook_deliveries (
  event_id     uuid        NOT NULL,
  webhook_id   bigint      NOT NULL REFERENCES tenant_webhooks (webhook_id),
  tenant_id    text        NOT NULL,
  alert_id     text        NOT NULL,
  attempts     integer     NOT NULL DEFAULT 0,
  last_status  integer,
  last_error   text,
  delivered_at timestamptz,
  failed_at    timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, webhook_id)
);

-- Plain-PostgreSQL retention (the `retention` job) deletes `WHERE ts < cutoff` in batches. The time
-- indexes of 0002/0004 lead with session_id, so give it a BRIN index on ts: a few pages per table,
-- nearly free to maintain on append-mostly data. TimescaleDB drops whole chunks instead (0005).
DO $$
DECLARE
  t text;
BEGIN
  IF NOT vigil_timescale() THEN
    FOREACH t IN ARRAY ARRAY['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events', 'fatigue_scores', 'alert_events'] LOOP
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING brin (ts)', t || '_ts_brin_idx', t);
    END LOOP;
  END IF;
END $$;

-- Down Migration
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events', 'fatigue_scores', 'alert_events'] LOOP
    EXECUTE format('DROP INDEX IF EXISTS %I', t || '_ts_brin_idx');
  END LOOP;
END $$;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS tenant_webhooks;
