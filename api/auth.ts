import type { RequestHandler, Response } from 'express';
import type { ApiKeyPrincipal, Role } from '../core/api-keys';
import { forbidden, unauthorized } from '../core/http/problem';
import { CSRF_HEADER, SESSION_COOKIE, cookieValue, type UiSessions } from './ui-session';

/** Who is calling: the API key's id, its tenant and its role. Every `/v1` query filters by `tenantId`. */
export type Principal = ApiKeyPrincipal;

/** What `authenticate` needs: `ApiKeyVerifier` (cached, see core/api-keys.ts) or a stand-in. */
export interface KeyVerifier {
  verify(key: string): Promise<Principal | null>;
}

const REALM = 'Bearer realm="vigil"';
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The presented key: `Authorization: Bearer <key>`, else `X-API-Key`. */
export function presentedKey(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  return m?.[1] ?? (apiKey?.trim() || undefined);
}

/**
 * Authenticates every request it sees with an API key (`Authorization: Bearer <key>` or `X-API-Key`)
 * and records the principal for `principalOf`. 401 problem with `WWW-Authenticate` when the key is
 * missing, unknown, wrong or revoked. Any role passes here; routes say which roles they accept.
 * With `sessions`, a request without a key may instead carry the board's session cookie (403 without
 * its CSRF token on a state-changing method; 401 when expired, forged or its key revoked).
 */
export function authenticate(verifier: KeyVerifier, sessions?: UiSessions): RequestHandler {
  return async (req, res, next) => {
    const key = presentedKey(req.get('authorization'), req.get('x-api-key'));
    const cookie = !key && sessions ? cookieValue(req.get('cookie'), SESSION_COOKIE) : undefined;
    if (cookie && sessions) {
      // The board's session cookie (api/ui-session.ts): valid, its key still active, and a CSRF token
      // on anything that is not a read.
      const session = sessions.read(cookie, Date.now());
      if (!session || !(await sessions.keyActive(session.keyId)))
        throw unauthorized('the board session has expired or was signed out: sign in again');
      if (!SAFE_METHODS.has(req.method) && !sessions.csrfMatches(session, req.get(CSRF_HEADER)))
        throw forbidden('send the session’s CSRF token in X-CSRF-Token with this request');
      res.locals.principal = { keyId: session.keyId, tenantId: session.tenantId, role: session.role };
      res.locals.uiSession = session;
      return next();
    }
    if (!key) {
      res.setHeader('WWW-Authenticate', REALM);
      throw unauthorized('send an API key: Authorization: Bearer <key> (or X-API-Key: <key>)');
    }
    const principal = await verifier.verify(key);
    if (!principal) {
      res.setHeader('WWW-Authenticate', `${REALM}, error="invalid_token"`);
      throw unauthorized('the API key is unknown or revoked');
    }
    res.locals.principal = principal;
    next();
  };
}

/** The authenticated caller; throws when `authenticate` did not run before (a wiring bug, a 500). */
export function principalOf(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  if (!p) throw new Error('principalOf: no principal on this response; mount authenticate() first');
  return p;
}

/**
 * Roles that may read the query API. Device keys only ingest; operator keys belong to no tenant and
 * read no tenant's data (they run rebuilds and the all-tenant admin actions).
 */
export const readerRoles: readonly Role[] = ['reader', 'admin'];

/** Whether the caller is an operator: not bound to a tenant, allowed the all-tenant admin actions. */
export const isOperator = (p: Principal): boolean => p.role === 'operator';

/** Refuses (403 problem) a caller whose role is not one of `roles`. Mount after `authenticate`. */
export function requireRole(...roles: Role[]): RequestHandler {
  return (_req, res, next) => {
    assertRole(principalOf(res), roles);
    next();
  };
}

export function assertRole(principal: Principal, roles: readonly Role[]): void {
  if (!roles.includes(principal.role)) {
    throw forbidden(`this needs a key of role ${roles.join(' or ')}; this key has role ${principal.role}`);
  }
}
