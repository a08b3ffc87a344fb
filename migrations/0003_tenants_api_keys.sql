-- Up Migration
-- Tenants and their API keys (DESIGN sections 6 and 7). Shared by the ingest gateway (role `device`)
-- and the query API (`reader`, `admin`). A key is `vgl_<key_id>_<secret>`; only sha256(secret) is
-- stored, so a leaked table does not leak keys. Revoking sets revoked_at; rows are never deleted,
-- so an audit can still tell which key wrote what.
CREATE TABLE tenants (
  tenant_id  text        PRIMARY KEY CHECK (tenant_id <> ''),
  name       text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  key_id     text        PRIMARY KEY,
  tenant_id  text        NOT NULL REFERENCES tenants (tenant_id),
  role       text        NOT NULL CHECK (role IN ('reader', 'admin', 'device')),
  key_hash   bytea       NOT NULL CHECK (octet_length(key_hash) = 32),
  label      text,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

-- Down Migration
DROP TABLE api_keys;
DROP TABLE tenants;
