import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Pool } from './db';
import { VigilError, messageOf } from './errors';

/**
 * API keys (docs/design.md §7): each maps to one tenant and one role. Shared by the ingest gateway
 * (role `device`) and the query API (`reader`, `admin`).
 *
 * Format: `vgl_<key_id>_<secret>`: `key_id` is 12 alphanumeric characters (public, the row's id, safe to
 * log), `secret` is 32 random bytes in base64url (43 characters). Only sha256(secret) is stored: the
 * secret has 256 bits of entropy, so a fast hash cannot be brute-forced and a slow password hash
 * would only cost latency. Hashes are compared with `timingSafeEqual`.
 *
 * Verification is on every request's hot path, so results are cached in process (LRU, bounded, with a
 * TTL): a revoked key keeps working in other processes for at most that TTL (`VIGIL_API_KEY_CACHE_TTL_MS`).
 *
 * Role `operator` is for whoever runs Vigil, not for a tenant: rebuilds, every tenant's admin jobs and
 * cache, the full /health report. An operator key belongs to no tenant (`api_keys.tenant_id` NULL); its
 * principal carries `ALL_TENANTS`, which no tenant id can equal, so a tenant filter matches nothing.
 */

export const roles = ['reader', 'admin', 'device', 'operator'] as const;
export type Role = (typeof roles)[number];

/** The tenant of an operator principal: not a tenant id (those start with a letter or digit). */
export const ALL_TENANTS = '*';

export interface ApiKeyPrincipal {
  keyId: string;
  /** The key's tenant; `ALL_TENANTS` for an operator key. */
  tenantId: string;
  role: Role;
}

const PREFIX = 'vgl';
const KEY_ID_LENGTH = 12;
const SECRET_BYTES = 32;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const KEY_RE = /^vgl_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Splits a presented key into its id and secret; null when it is not of the `vgl_<id>_<secret>` form. */
export function parseApiKey(key: string): { keyId: string; secret: string } | null {
  const m = KEY_RE.exec(key.trim());
  return m ? { keyId: m[1]!, secret: m[2]! } : null;
}

/** sha256 of the secret's characters: what `api_keys.key_hash` holds. */
export const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/** A new key (not stored): its plain text, id and hash. */
export function generateApiKey(): { key: string; keyId: string; hash: Buffer } {
  const keyId = randomAlphanumeric(KEY_ID_LENGTH);
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { key: `${PREFIX}_${keyId}_${secret}`, keyId, hash: hashSecret(secret) };
}

function randomAlphanumeric(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely.
      if (b < 248 && out.length < n) out += ALPHANUMERIC[b % 62];
    }
  }
  return out;
}

const isRole = (v: unknown): v is Role => typeof v === 'string' && (roles as readonly string[]).includes(v);

interface CreateApiKeyInput {
  /** Required for every role but `operator`, which must not have one (or give `ALL_TENANTS`). */
  tenantId?: string;
  role: Role;
  label?: string;
  /** Display name of the tenant when it is created by this call (default: the tenant id). */
  tenantName?: string;
}

/**
 * Creates a key (and its tenant when missing) and returns the plain key: the only time it exists
 * outside the caller's hands. Throws REQUEST_INVALID for a bad tenant id or role.
 */
export async function createApiKey(
  pool: Pool,
  input: CreateApiKeyInput,
): Promise<{ key: string; keyId: string; tenantId: string; role: Role }> {
  if (!isRole(input.role)) {
    throw new VigilError('REQUEST_INVALID', `role ${JSON.stringify(input.role)} must be one of ${roles.join(', ')}`);
  }
  const operator = input.role === 'operator';
  if (operator && input.tenantId !== undefined && input.tenantId !== ALL_TENANTS) {
    throw new VigilError('REQUEST_INVALID', 'an operator key belongs to no tenant: give no tenant id');
  }
  if (!operator && (input.tenantId === undefined || !TENANT_RE.test(input.tenantId))) {
    throw new VigilError(
      'REQUEST_INVALID',
      `tenant id ${JSON.stringify(input.tenantId ?? '')} must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  const tenantId = operator ? null : input.tenantId!;
  const { key, keyId, hash } = generateApiKey();
  await query(async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      if (tenantId !== null) {
        await client.query('INSERT INTO tenants (tenant_id, name) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING', [
          tenantId,
          input.tenantName ?? tenantId,
        ]);
      }
      await client.query(
        'INSERT INTO api_keys (key_id, tenant_id, role, key_hash, label) VALUES ($1, $2, $3, $4, $5)',
        [keyId, tenantId, input.role, hash, input.label ?? null],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  });
  verifierOf(pool).forget(keyId);
  return { key, keyId, tenantId: tenantId ?? ALL_TENANTS, role: input.role };
}

/**
 * Revokes a key; true when it was active. This process forgets it at once; other processes refuse it
 * once their cache entry expires (the cache TTL).
 */
export async function revokeApiKey(pool: Pool, keyId: string): Promise<boolean> {
  const res = await query(() =>
    pool.query('UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL', [keyId]),
  );
  verifierOf(pool).forget(keyId);
  return (res.rowCount ?? 0) > 0;
}

interface ApiKeyInfo {
  keyId: string;
  /** `ALL_TENANTS` for an operator key. */
  tenantId: string;
  role: Role;
  label: string | null;
  createdAt: Date;
  revokedAt: Date | null;
}

/** The keys of a tenant (or all), newest first, without their hashes. */
export async function listApiKeys(pool: Pool, tenantId?: string): Promise<ApiKeyInfo[]> {
  const res = await query(() =>
    pool.query(
      `SELECT key_id, tenant_id, role, label, created_at, revoked_at FROM api_keys
        WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY created_at DESC, key_id`,
      [tenantId ?? null],
    ),
  );
  return res.rows.map((r) => ({
    keyId: r.key_id,
    tenantId: r.tenant_id ?? ALL_TENANTS,
    role: r.role,
    label: r.label,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  }));
}

type Entry = { missing: true } | { missing: false; hash: Buffer; tenantId: string; role: Role; revoked: boolean };

interface VerifierOptions {
  /** How long a looked-up key is trusted without asking PostgreSQL again; 0 disables the cache. */
  ttlMs?: number;
  /** Bound on cached keys (least recently used go first). */
  max?: number;
  /** How long an unknown key id is remembered (short: a key created elsewhere becomes valid quickly). */
  missTtlMs?: number;
}

/** Verifies presented keys against `api_keys`, with a bounded in-process cache keyed by key id. */
export class ApiKeyVerifier {
  private readonly cache?: LRUCache<string, Entry>;
  private readonly missTtlMs: number;

  constructor(
    private readonly pool: Pool,
    opts: VerifierOptions = {},
  ) {
    const ttl = opts.ttlMs ?? 30_000;
    this.missTtlMs = Math.min(opts.missTtlMs ?? 5_000, ttl);
    if (ttl > 0) {
      this.cache = new LRUCache<string, Entry>({
        max: opts.max ?? 10_000,
        ttl,
        // Concurrent requests with the same uncached key share one query.
        fetchMethod: async (keyId, _stale, { options }) => {
          const entry = await this.load(keyId);
          if (entry.missing) options.ttl = this.missTtlMs;
          return entry;
        },
      });
    }
  }

  /** The key's tenant and role, or null when it is malformed, unknown, wrong or revoked. */
  async verify(key: string, opts: { bypassCache?: boolean } = {}): Promise<ApiKeyPrincipal | null> {
    const parsed = parseApiKey(key);
    if (!parsed) return null;
    const entry =
      this.cache && !opts.bypassCache ? await this.cache.fetch(parsed.keyId) : await this.load(parsed.keyId);
    if (!entry || entry.missing) return null;
    const presented = hashSecret(parsed.secret);
    if (presented.length !== entry.hash.length || !timingSafeEqual(presented, entry.hash)) return null;
    if (entry.revoked) return null;
    return { keyId: parsed.keyId, tenantId: entry.tenantId, role: entry.role };
  }

  /** Drops a key from this process's cache (after revoking or creating it). */
  forget(keyId: string): void {
    this.cache?.delete(keyId);
  }

  private async load(keyId: string): Promise<Entry> {
    const res = await query(() =>
      this.pool.query<{ key_hash: Buffer; tenant_id: string | null; role: Role; revoked: boolean }>(
        'SELECT key_hash, tenant_id, role, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_id = $1',
        [keyId],
      ),
    );
    const row = res.rows[0];
    if (!row) return { missing: true };
    const tenantId = row.tenant_id ?? ALL_TENANTS;
    return { missing: false, hash: row.key_hash, tenantId, role: row.role, revoked: row.revoked };
  }
}

const verifiers = new WeakMap<Pool, ApiKeyVerifier>();

/** The default verifier of a pool (30 s TTL, 10k keys); `configureApiKeyCache` replaces it. */
function verifierOf(pool: Pool): ApiKeyVerifier {
  let v = verifiers.get(pool);
  if (!v) verifiers.set(pool, (v = new ApiKeyVerifier(pool)));
  return v;
}

/** Sets the cache options of a pool's default verifier (e.g. from `Config.apiKeys`). */
export function configureApiKeyCache(pool: Pool, opts: VerifierOptions): ApiKeyVerifier {
  const v = new ApiKeyVerifier(pool, opts);
  verifiers.set(pool, v);
  return v;
}

/** Verifies a presented key with the pool's cached verifier; null when not a valid active key. */
export function verifyApiKey(
  pool: Pool,
  key: string,
  opts: { bypassCache?: boolean } = {},
): Promise<ApiKeyPrincipal | null> {
  return verifierOf(pool).verify(key, opts);
}

/**
 * Which of `keyIds` are still active (exist and not revoked), asked of PostgreSQL directly, not of any
 * cache: open streams re-check their keys with it, so a revoked key's streams end within one re-check
 * period whatever the verifier cache's TTL.
 */
export async function activeApiKeys(pool: Pool, keyIds: readonly string[]): Promise<Set<string>> {
  if (keyIds.length === 0) return new Set();
  const res = await query(() =>
    pool.query<{ key_id: string }>('SELECT key_id FROM api_keys WHERE key_id = ANY($1) AND revoked_at IS NULL', [
      [...keyIds],
    ]),
  );
  return new Set(res.rows.map((r) => r.key_id));
}

/** Runs a query; a missing table or an unreachable server becomes DATABASE_UNAVAILABLE. */
async function query<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (code === '42P01') {
      throw new VigilError('DATABASE_UNAVAILABLE', 'table api_keys is missing: run `vigil migrate`', { cause });
    }
    if (typeof code === 'string' && /^(23|22)/.test(code)) {
      throw new VigilError('REQUEST_INVALID', `api key: ${messageOf(cause)}`, { cause });
    }
    throw new VigilError('DATABASE_UNAVAILABLE', `api keys: ${messageOf(cause)}`, { cause, retriable: true });
  }
}
