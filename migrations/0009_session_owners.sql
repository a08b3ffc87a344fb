-- Up Migration
-- Session ownership (issue 11): a session id belongs to the first tenant that claims it, for good.
-- Session ids are global (they key every Kafka topic), so without this a device of tenant B could
-- write into tenant A's session by naming its id. Claimed by the ingest gateway at the door (403 to
-- any other tenant) and by the projection runners for records written straight to Kafka (dead
-- letter `tenant_mismatch`). Never deleted by retention or rebuilds: it is not a read model, and a
-- forgotten owner would let another tenant claim the id again.
CREATE TABLE session_owners (
  session_id text        PRIMARY KEY,
  tenant_id  text        NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE IF EXISTS session_owners;
