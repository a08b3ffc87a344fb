-- Up Migration
-- Operator keys (issue 11, "operators, not tenants, rebuild"): role `operator` is for the people who run
-- Vigil, not for a tenant. It may rebuild read models, read any admin job, invalidate every tenant's
-- report cache and read the full /health report; it may read no tenant's data through the tenant routes.
-- An operator key belongs to no tenant: its tenant_id is NULL, and every other role's is set.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('reader', 'admin', 'device', 'operator'));
ALTER TABLE api_keys ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_operator_no_tenant CHECK ((role = 'operator') = (tenant_id IS NULL));

-- Down Migration
DELETE FROM api_keys WHERE role = 'operator';
ALTER TABLE api_keys DROP CONSTRAINT api_keys_operator_no_tenant;
ALTER TABLE api_keys ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('reader', 'admin', 'device'));
