import * as path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import helmet from 'helmet';
import { repoRoot } from '../core/paths';
import { SESSION_COOKIE, cookieValue, type UiSessions } from './ui-session';
import { sessionInfo } from './routes/ui-session';

/**
 * The fleet board's static files: `api/ui/` (plain ES modules, no build step) at `/ui/`, uPlot's ESM
 * build and stylesheet from its npm package at `/ui/vendor/`; `/` and `/ui` redirect to `/ui/`.
 *
 * Strict Content-Security-Policy on all of it: scripts, styles, connections and images from this
 * origin only, no inline script or style, no framing, no plugins. No `upgrade-insecure-requests`: the
 * board must work over plain HTTP at any host name. Cache: the HTML is revalidated on every load
 * (`no-cache`), the board's modules and styles for 5 minutes, the vendored library for a day.
 *
 * `GET /ui/session` tells the page whether its cookie is a valid session (200 either way, so a first
 * visit logs no failed request): `{ signed_in: false }` or the session as `GET /v1/auth/session` has it.
 */
export const UI_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    fontSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
};

const uiFolder = () => path.join(repoRoot(), 'api', 'ui');
const vendorFolder = () => path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');

const cacheFor =
  (maxAgeS: number): ((res: express.Response, file: string) => void) =>
  (res, file) =>
    res.setHeader('Cache-Control', file.endsWith('.html') ? 'no-cache' : `public, max-age=${maxAgeS}`);

export function uiRouter(sessions: UiSessions | undefined): Router {
  const r = Router();
  r.get('/ui/session', async (req, res) => {
    const cookie = sessions ? cookieValue(req.get('cookie'), SESSION_COOKIE) : undefined;
    const s = cookie && sessions ? sessions.read(cookie, Date.now()) : null;
    const ok = s && sessions ? await sessions.keyActive(s.keyId) : false;
    res.setHeader('Cache-Control', 'no-store');
    res.json(ok && s ? { signed_in: true, ...sessionInfo(s) } : { signed_in: false });
  });
  const csp: RequestHandler = helmet.contentSecurityPolicy(UI_CSP);
  // Exactly `/` and `/ui` (routing is not strict: a route '/ui' would also match '/ui/').
  const toBoard: RequestHandler = (req, res, next) =>
    req.path === '/' || req.path === '/ui' ? res.redirect(302, '/ui/') : next();
  r.get('/', toBoard);
  r.get('/ui', toBoard);
  r.use(
    '/ui/vendor',
    csp,
    express.static(vendorFolder(), {
      index: false,
      fallthrough: false,
      setHeaders: cacheFor(86_400),
    }),
  );
  r.use('/ui', csp, express.static(uiFolder(), { index: 'index.html', setHeaders: cacheFor(300) }));
  return r;
}
