import { createHash } from 'node:crypto';
import type { Pool } from './db';
import { ApiKeyVerifier, generateApiKey, hashSecret, parseApiKey } from './api-keys';

describe('API key format and hashing', () => {
  it('generates vgl_<12 alphanumerics>_<43 base64url chars> keys that parse back', () => {
    const { key, keyId, hash } = generateApiKey();
    expect(key).toMatch(/^vgl_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    const parsed = parseApiKey(key);
    expect(parsed?.keyId).toBe(keyId);
    expect(Buffer.from(parsed!.secret, 'base64url')).toHaveLength(32);
    expect(hash).toEqual(createHash('sha256').update(parsed!.secret).digest());
  });

  it('never generates the same id or secret twice', () => {
    const keys = Array.from({ length: 500 }, () => parseApiKey(generateApiKey().key)!);
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(500);
    expect(new Set(keys.map((k) => k.secret)).size).toBe(500);
  });

  it('splits on the first underscore after the id, so secrets may contain underscores', () => {
    const secret = `${'_'.repeat(10)}${'a'.repeat(33)}`;
    expect(parseApiKey(`vgl_AbCdEf012345_${secret}`)).toEqual({ keyId: 'AbCdEf012345', secret });
  });

  it.each([
    ['empty', ''],
    ['another prefix', `sk_AbCdEf012345_${'a'.repeat(43)}`],
    ['a short id', `vgl_AbCdEf01234_${'a'.repeat(43)}`],
    ['an id with "-"', `vgl_AbCdEf01234-_${'a'.repeat(43)}`],
    ['a short secret', `vgl_AbCdEf012345_${'a'.repeat(42)}`],
    ['a secret with "+"', `vgl_AbCdEf012345_${'a'.repeat(42)}+`],
  ])('refuses %s', (_what, key) => {
    expect(parseApiKey(key)).toBeNull();
  });

  it('hashes the secret with sha256 (32 bytes, deterministic)', () => {
    expect(hashSecret('x')).toHaveLength(32);
    expect(hashSecret('x')).toEqual(hashSecret('x'));
    expect(hashSecret('x')).not.toEqual(hashSecret('y'));
  });
});

describe('API key verifier cache (fake pool)', () => {
  const { key, keyId, hash } = generateApiKey();
  const fakePool = (row: Record<string, unknown> | undefined) => {
    const query = jest.fn(async () => ({ rows: row ? [row] : [] }));
    return { pool: { query } as unknown as Pool, query };
  };
  const active = { key_hash: hash, tenant_id: 'fleet-a', role: 'device', revoked: false };

  it('answers tenant and role, asking the database once per key within the TTL', async () => {
    const { pool, query } = fakePool(active);
    const v = new ApiKeyVerifier(pool, { ttlMs: 60_000 });
    const results = await Promise.all([v.verify(key), v.verify(key), v.verify(key)]);
    expect(results).toEqual(Array(3).fill({ keyId, tenantId: 'fleet-a', role: 'device' }));
    expect(await v.verify(key)).not.toBeNull();
    expect(query).toHaveBeenCalledTimes(1);
  });

  it('refuses a wrong secret for a known id, from the cache', async () => {
    const { pool, query } = fakePool(active);
    const v = new ApiKeyVerifier(pool);
    await v.verify(key);
    const wrong = `vgl_${keyId}_${'A'.repeat(43)}`;
    expect(await v.verify(wrong)).toBeNull();
    expect(query).toHaveBeenCalledTimes(1);
  });

  it('refuses malformed keys without a query, and unknown or revoked ones', async () => {
    const none = fakePool(undefined);
    expect(await new ApiKeyVerifier(none.pool).verify('Bearer nonsense')).toBeNull();
    expect(none.query).not.toHaveBeenCalled();
    expect(await new ApiKeyVerifier(none.pool).verify(key)).toBeNull();
    const revoked = fakePool({ ...active, revoked: true });
    expect(await new ApiKeyVerifier(revoked.pool).verify(key)).toBeNull();
  });

  it('asks again with bypassCache, after forget, and always when the TTL is 0', async () => {
    const { pool, query } = fakePool(active);
    const v = new ApiKeyVerifier(pool);
    await v.verify(key);
    await v.verify(key, { bypassCache: true });
    v.forget(keyId);
    await v.verify(key);
    expect(query).toHaveBeenCalledTimes(3);
    const uncached = fakePool(active);
    const v0 = new ApiKeyVerifier(uncached.pool, { ttlMs: 0 });
    await v0.verify(key);
    await v0.verify(key);
    expect(uncached.query).toHaveBeenCalledTimes(2);
  });

  it('turns a database failure into a retriable DATABASE_UNAVAILABLE', async () => {
    const pool = { query: jest.fn(async () => Promise.reject(new Error('connect ECONNREFUSED'))) } as unknown as Pool;
    await expect(new ApiKeyVerifier(pool).verify(key)).rejects.toMatchObject({
      code: 'DATABASE_UNAVAILABLE',
      retriable: true,
    });
  });
});
