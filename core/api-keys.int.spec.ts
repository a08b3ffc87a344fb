import { Pool } from 'pg';
import { migratedDatabase, type MigratedDatabase } from '../test/support/database';
import { createTestDatabase } from '../test/support/postgres';
import {
  ApiKeyVerifier,
  createApiKey,
  listApiKeys,
  parseApiKey,
  revokeApiKey,
  verifyApiKey,
  type Role,
} from './api-keys';

describe('API keys in PostgreSQL (create, verify, revoke)', () => {
  let db: MigratedDatabase;
  let pool: Pool;

  beforeAll(async () => {
    db = await migratedDatabase();
    pool = db.pool;
  });
  afterAll(() => db?.close());

  it('creates the tenant with its first key, stores only the hash, and verifies the key', async () => {
    const k = await createApiKey(pool, { tenantId: 'fleet-a', role: 'device', label: 'cab 7' });
    expect(await verifyApiKey(pool, k.key)).toEqual({ keyId: k.keyId, tenantId: 'fleet-a', role: 'device' });

    const tenants = await pool.query('SELECT tenant_id, name FROM tenants');
    expect(tenants.rows).toEqual([{ tenant_id: 'fleet-a', name: 'fleet-a' }]);
    const row = (await pool.query('SELECT * FROM api_keys WHERE key_id = $1', [k.keyId])).rows[0];
    expect(row).toMatchObject({ tenant_id: 'fleet-a', role: 'device', label: 'cab 7', revoked_at: null });
    expect(row.key_hash).toHaveLength(32);
    const secret = parseApiKey(k.key)!.secret;
    expect(JSON.stringify(row)).not.toContain(secret);
  });

  it('keeps one tenant row for several keys, and lists keys without secrets', async () => {
    const r = await createApiKey(pool, { tenantId: 'fleet-a', role: 'reader' });
    expect(await verifyApiKey(pool, r.key)).toMatchObject({ role: 'reader', tenantId: 'fleet-a' });
    expect((await pool.query('SELECT count(*)::int AS n FROM tenants')).rows[0].n).toBe(1);
    const listed = await listApiKeys(pool, 'fleet-a');
    expect(listed.map((k) => k.keyId)).toContain(r.keyId);
    expect(Object.keys(listed[0]!)).not.toContain('hash');
  });

  it('refuses a wrong secret, an unknown id and a malformed key', async () => {
    const k = await createApiKey(pool, { tenantId: 'fleet-b', role: 'admin' });
    const { keyId } = parseApiKey(k.key)!;
    expect(await verifyApiKey(pool, `vgl_${keyId}_${'x'.repeat(43)}`)).toBeNull();
    expect(await verifyApiKey(pool, `vgl_000000000000_${'x'.repeat(43)}`)).toBeNull();
    expect(await verifyApiKey(pool, 'hunter2')).toBeNull();
  });

  it('revokes: this process refuses at once; another process once its cache entry expires', async () => {
    const k = await createApiKey(pool, { tenantId: 'fleet-c', role: 'device' });
    // Another gateway instance: its own verifier with a short TTL, key already cached.
    const other = new ApiKeyVerifier(pool, { ttlMs: 300 });
    expect(await other.verify(k.key)).not.toBeNull();

    expect(await revokeApiKey(pool, k.keyId)).toBe(true);
    expect(await revokeApiKey(pool, k.keyId)).toBe(false);
    expect(await verifyApiKey(pool, k.key)).toBeNull();
    expect(await other.verify(k.key, { bypassCache: true })).toBeNull();

    const stale = new ApiKeyVerifier(pool, { ttlMs: 300 });
    const fresh = await createApiKey(pool, { tenantId: 'fleet-c', role: 'device' });
    expect(await stale.verify(fresh.key)).not.toBeNull();
    await pool.query('UPDATE api_keys SET revoked_at = now() WHERE key_id = $1', [fresh.keyId]);
    expect(await stale.verify(fresh.key)).not.toBeNull(); // still cached
    await new Promise((r) => setTimeout(r, 400));
    expect(await stale.verify(fresh.key)).toBeNull();
  });

  it.each([
    ['a tenant id with spaces', { tenantId: 'fleet a', role: 'device' as Role }],
    ['an empty tenant id', { tenantId: '', role: 'device' as Role }],
    ['an unknown role', { tenantId: 'fleet-a', role: 'root' as Role }],
  ])('refuses to create a key for %s', async (_what, input) => {
    await expect(createApiKey(pool, input)).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
  });

  it('says to run the migrations when the tables are missing', async () => {
    const empty = await createTestDatabase();
    const p = new Pool({ connectionString: empty.url, max: 1 });
    try {
      await expect(verifyApiKey(p, `vgl_000000000000_${'x'.repeat(43)}`)).rejects.toMatchObject({
        code: 'DATABASE_UNAVAILABLE',
        message: expect.stringContaining('vigil migrate'),
      });
    } finally {
      await p.end();
      await empty.drop();
    }
  });
});
