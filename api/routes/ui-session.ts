import { Router, type Request } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../app';
import { route } from '../openapi';
import { badRequest, forbidden } from '../../core/http/problem';
import { sessionCookie, type UiSession, type UiSessions } from '../ui-session';

/**
 * The board's sign-in (api/ui-session.ts): `POST /v1/auth/session` with a reader or admin key in
 * `Authorization` sets the HttpOnly session cookie and returns the CSRF token; `GET` tells the page
 * who is signed in (and the token again, after a reload); `DELETE` signs out (clears the cookie).
 */
const SessionInfo = z
  .object({
    tenant_id: z.string(),
    role: z.string(),
    key_id: z.string(),
    expires_at: z.string(),
    csrf_token: z.string().openapi({ description: 'send it in X-CSRF-Token with every state-changing request' }),
  })
  .openapi('UiSession');

export const sessionInfo = (s: UiSession): z.infer<typeof SessionInfo> => ({
  tenant_id: s.tenantId,
  role: s.role,
  key_id: s.keyId,
  expires_at: new Date(s.expiresAt).toISOString(),
  csrf_token: s.csrfToken,
});

const sessionOfRequest = (res: { locals: Record<string, unknown> }) => res.locals.uiSession as UiSession | undefined;
const isHttps = (req: Request) => req.secure;

export const uiSessionRoutes = (d: ApiDeps): Router => uiSessionRouter(d.uiSessions);

function uiSessionRouter(sessions: UiSessions | undefined): Router {
  const r = Router();
  if (!sessions) return r;
  route(
    r,
    {
      method: 'post',
      path: '/v1/auth/session',
      summary: 'Sign in to the board: exchange the API key in Authorization for a session cookie',
      description:
        'Sets `vigil_session` (HttpOnly, SameSite=Strict, Path=/, Secure over HTTPS; lifetime VIGIL_UI_SESSION_TTL_S). Requests made with the cookie instead of a key must send `X-CSRF-Token` on every method but GET and HEAD.',
      tags: ['board'],
      responses: {
        201: { description: 'signed in', schema: SessionInfo },
        400: { description: 'the request carried a session cookie, not a key' },
      },
    },
    ({ principal }, req, res) => {
      if (sessionOfRequest(res))
        throw badRequest([{ field: 'Authorization', message: 'sign in with an API key, not a session cookie' }]);
      const { cookie, session } = sessions.issue(principal, Date.now());
      res.setHeader('Set-Cookie', sessionCookie(cookie, sessions.ttlMs / 1000, isHttps(req)));
      res.setHeader('Cache-Control', 'no-store');
      res.status(201).json(sessionInfo(session));
    },
  );
  route(
    r,
    {
      method: 'get',
      path: '/v1/auth/session',
      summary: 'The board session of this cookie (who is signed in, until when, the CSRF token)',
      tags: ['board'],
      responses: {
        200: { description: 'signed in', schema: SessionInfo },
        403: { description: 'the request carried an API key, not a session cookie' },
      },
    },
    (_input, _req, res) => {
      const s = sessionOfRequest(res);
      if (!s) throw forbidden('this tells a board session; this request was made with an API key, not one');
      res.setHeader('Cache-Control', 'no-store');
      res.json(sessionInfo(s));
    },
  );
  route(
    r,
    {
      method: 'delete',
      path: '/v1/auth/session',
      summary: 'Sign out of the board (clears the session cookie)',
      tags: ['board'],
      responses: { 204: { description: 'signed out' } },
    },
    (_input, req, res) => {
      res.setHeader('Set-Cookie', sessionCookie('', 0, isHttps(req)));
      res.status(204).end();
    },
  );
  return r;
}
