import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Pool } from '../core/db';
import { activeApiKeys, type ApiKeyPrincipal } from '../core/api-keys';

/**
 * Browser sign-in for the board: the user presents a reader (or admin) key once; the API answers with
 * a signed session cookie that names the key (its id, never its secret), the tenant, the role, an
 * expiry and a CSRF secret. The cookie is HttpOnly and SameSite=Strict (scripts cannot read it, other
 * sites cannot send it); state-changing requests made with it must also carry `X-CSRF-Token`, a value
 * derived from the cookie that the page receives in the sign-in answer (double submit, signed).
 *
 * Stateless: any API instance with the same secret accepts the cookie until it expires. The key it
 * names is re-checked against `api_keys` (at most `activeTtlMs` old), so revoking the key ends its
 * board sessions too. Sign-out clears the cookie in the browser; a copied cookie stays valid until its
 * expiry (`VIGIL_UI_SESSION_TTL_S`, one hour by default).
 */
export const SESSION_COOKIE = 'vigil_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface UiSession extends ApiKeyPrincipal {
  /** Expiry, epoch ms. */
  expiresAt: number;
  /** The token state-changing requests must send in `X-CSRF-Token`. */
  csrfToken: string;
}

interface Payload {
  k: string;
  t: string;
  r: ApiKeyPrincipal['role'];
  e: number;
  /** Random nonce the CSRF token is derived from. */
  n: string;
}

export interface UiSessionOptions {
  /** HMAC secret; absent: 32 random bytes for this process. */
  secret?: string;
  ttlS: number;
  /** How long "this key is still active" is remembered (default 10 s; 0: asked every time). */
  activeTtlMs?: number;
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class UiSessions {
  private readonly secret: Buffer;
  readonly ttlMs: number;
  private readonly active?: LRUCache<string, boolean>;

  constructor(
    private readonly pool: Pool,
    opts: UiSessionOptions,
  ) {
    this.secret = opts.secret ? Buffer.from(opts.secret, 'utf8') : randomBytes(32);
    this.ttlMs = opts.ttlS * 1000;
    const activeTtl = opts.activeTtlMs ?? 10_000;
    if (activeTtl > 0) this.active = new LRUCache({ max: 10_000, ttl: activeTtl });
  }

  private mac(what: string): string {
    return createHmac('sha256', this.secret).update(what).digest('base64url');
  }

  /** A new session for a verified principal at `now`: the cookie value and what the page may know. */
  issue(p: ApiKeyPrincipal, now: number): { cookie: string; session: UiSession } {
    const payload: Payload = { k: p.keyId, t: p.tenantId, r: p.role, e: now + this.ttlMs, n: b64(randomBytes(16)) };
    const body = b64(JSON.stringify(payload));
    return { cookie: `${body}.${this.mac(`cookie:${body}`)}`, session: this.sessionOf(payload) };
  }

  private sessionOf(p: Payload): UiSession {
    return { keyId: p.k, tenantId: p.t, role: p.r, expiresAt: p.e, csrfToken: this.mac(`csrf:${p.n}`) };
  }

  /** The session a cookie value carries: null when it is malformed, forged or expired at `now`. */
  read(cookie: string, now: number): UiSession | null {
    const dot = cookie.indexOf('.');
    if (dot <= 0 || cookie.length > 1024) return null;
    const body = cookie.slice(0, dot);
    const given = Buffer.from(cookie.slice(dot + 1));
    const expected = Buffer.from(this.mac(`cookie:${body}`));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let p: Payload;
    try {
      p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload;
    } catch {
      return null;
    }
    if (typeof p.e !== 'number' || p.e <= now || typeof p.k !== 'string' || typeof p.n !== 'string') return null;
    return this.sessionOf(p);
  }

  /** Whether a presented CSRF token is the session's (constant time). */
  csrfMatches(session: UiSession, presented: string | undefined): boolean {
    if (!presented) return false;
    const a = Buffer.from(presented);
    const b = Buffer.from(session.csrfToken);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Whether the session's key is still active (not revoked), remembered for a few seconds. */
  async keyActive(keyId: string): Promise<boolean> {
    const known = this.active?.get(keyId);
    if (known !== undefined) return known;
    const ok = (await activeApiKeys(this.pool, [keyId])).has(keyId);
    this.active?.set(keyId, ok);
    return ok;
  }
}

/** The value of one cookie in a `Cookie` header (first occurrence), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The `Set-Cookie` value of a session cookie (or of its removal when `value` is empty): HttpOnly,
 * SameSite=Strict, Path=/, Secure when the request came over HTTPS (the board also works on plain
 * HTTP, where a Secure cookie would never be sent back).
 */
export function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${value ? maxAgeS : 0}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
