import { apiFixture, type ApiFixture } from '../test/support/api';
import { openSse, type SseClient } from '../test/support/sse';
import { eventually, testLogger } from '../test/support/env';
import { redisKeys } from '../core/redis-keys';
import { revokeApiKey } from '../core/api-keys';
import { FeedHub } from './feed-hub';
import { UiSessions } from './ui-session';

/**
 * What the fleet board needs from the API, against real PostgreSQL and Redis: the board's static files
 * under a strict CSP, cookie sign-in with CSRF, the tenant-wide live feed `/v1/live`, and what-if
 * scores on the score route (`model`).
 */
describe('fleet board API (real PostgreSQL, Redis)', () => {
  let fx: ApiFixture;
  let url: string;
  let hub: FeedHub;
  let reader: string;
  let otherTenant: string;
  const clients: SseClient[] = [];
  const T0 = Date.UTC(2026, 2, 1, 8, 0);

  beforeAll(async () => {
    fx = await apiFixture();
    reader = await fx.key('fleet-board', 'reader');
    otherTenant = await fx.key('fleet-other', 'reader');
    hub = new FeedHub(fx.redis, testLogger(), { blockMs: 500, count: 100 });
    url = await fx.start({ live: { hub }, uiSessions: new UiSessions(fx.pool, { ttlS: 60, activeTtlMs: 0 }) });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await hub?.close();
    await fx?.close();
  });

  const signIn = async (key: string) => {
    const res = await fetch(`${url}/v1/auth/session`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const setCookie = res.headers.get('set-cookie') ?? '';
    return { res, setCookie, cookie: setCookie.split(';')[0]!, body: (await res.json()) as Record<string, string> };
  };

  it('serves the board at / and /ui/ with a strict CSP (no inline script or style, no https upgrade) and cache headers', async () => {
    const root = await fetch(`${url}/`, { redirect: 'manual' });
    expect([root.status, root.headers.get('location')]).toEqual([302, '/ui/']);
    const page = await fetch(`${url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('upgrade-insecure-requests');
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // every script is a file
    expect(html).not.toMatch(/\sstyle="/);
    const js = await fetch(`${url}/ui/app.js`);
    expect([js.status, js.headers.get('content-type'), js.headers.get('cache-control')]).toEqual([
      200,
      'text/javascript; charset=utf-8',
      'public, max-age=300',
    ]);
    const vendor = await fetch(`${url}/ui/vendor/uPlot.esm.js`);
    expect([vendor.status, vendor.headers.get('cache-control')]).toEqual([200, 'public, max-age=86400']);
    expect((await fetch(`${url}/ui/nope.js`)).status).toBe(404);
  });

  it('serves /docs without upgrade-insecure-requests, so it renders over plain HTTP at any host name', async () => {
    const docs = await fetch(`${url}/docs/`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).not.toContain('upgrade-insecure-requests');
  });

  it('signs in with a reader key: an HttpOnly SameSite=Strict cookie that reads, and a CSRF token for writes', async () => {
    const { res, setCookie, cookie, body } = await signIn(reader);
    expect(res.status).toBe(201);
    expect(setCookie).toMatch(/^vigil_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=60$/);
    // vgl_<12-character id>_<secret>; the secret is base64url and may itself hold '_'.
    const [, keyId, secret] = /^vgl_([A-Za-z0-9]{12})_(.+)$/.exec(reader)!;
    expect(setCookie).not.toContain(secret!); // the key's secret is not in the cookie
    expect(body).toMatchObject({ tenant_id: 'fleet-board', role: 'reader', key_id: keyId });
    expect(body.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const sessions = await fetch(`${url}/v1/sessions`, { headers: { cookie } });
    expect(sessions.status).toBe(200);
    const who = await fetch(`${url}/v1/auth/session`, { headers: { cookie } });
    expect(((await who.json()) as Record<string, string>).csrf_token).toBe(body.csrf_token);

    // A write without the CSRF token is refused before it does anything; with it, it goes through.
    const ack = (headers: Record<string, string>) =>
      fetch(`${url}/v1/alerts/no-such-alert/ack`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: '{}',
      });
    const noToken = await ack({});
    expect(noToken.status).toBe(403);
    expect(((await noToken.json()) as { detail: string }).detail).toMatch(/CSRF/);
    expect((await ack({ 'x-csrf-token': 'x'.repeat(43) })).status).toBe(403);
    expect((await ack({ 'x-csrf-token': body.csrf_token! })).status).not.toBe(403);
  });

  it('refuses forged, other-secret and revoked-key cookies with 401, and signs out by clearing the cookie', async () => {
    const { cookie, body } = await signIn(reader);
    const [name, value] = cookie.split('=') as [string, string];
    const forged = `${name}=${value.slice(0, -2)}${value.endsWith('AA') ? 'BB' : 'AA'}`;
    expect((await fetch(`${url}/v1/sessions`, { headers: { cookie: forged } })).status).toBe(401);
    const otherApp = await fx.start({ uiSessions: new UiSessions(fx.pool, { ttlS: 60 }) });
    expect((await fetch(`${otherApp}/v1/sessions`, { headers: { cookie } })).status).toBe(401);

    const out = await fetch(`${url}/v1/auth/session`, {
      method: 'DELETE',
      headers: { cookie, 'x-csrf-token': body.csrf_token! },
    });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toBe('vigil_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');

    const key = await fx.key('fleet-board', 'reader');
    const signed = await signIn(key);
    expect((await fetch(`${url}/v1/sessions`, { headers: { cookie: signed.cookie } })).status).toBe(200);
    await revokeApiKey(fx.pool, key.split('_')[1]!);
    expect((await fetch(`${url}/v1/sessions`, { headers: { cookie: signed.cookie } })).status).toBe(401);
  });

  it('expires a session after its lifetime', async () => {
    const sessions = new UiSessions(fx.pool, { ttlS: 60 });
    const { cookie } = sessions.issue({ keyId: 'k', tenantId: 't', role: 'reader' }, T0);
    expect(sessions.read(cookie, T0 + 59_999)).toMatchObject({ keyId: 'k', tenantId: 't', expiresAt: T0 + 60_000 });
    expect(sessions.read(cookie, T0 + 60_000)).toBeNull();
  });

  it('does not sign in device keys (the board is for readers and admins)', async () => {
    const device = await fx.key('fleet-board', 'device');
    expect((await signIn(device)).res.status).toBe(403);
  });

  it('streams the tenant feed on /v1/live (cookie or key), only the caller tenant’s, resumable with Last-Event-ID', async () => {
    const keys = redisKeys(fx.config.topicPrefix);
    let n = 0;
    const append = async (tenant: string, session: string) => {
      n += 1;
      const data = JSON.stringify({ session_id: session, score: n });
      const id = await fx.redis.xadd(
        keys.tenantFeed(tenant),
        '*',
        'kind',
        'score',
        'ts',
        String(T0 + n),
        'event_id',
        `e${n}`,
        'data',
        data,
      );
      return { id: id!, event: 'score', data };
    };
    const { cookie } = await signIn(reader);
    const c = await openSse(`${url}/v1/live`, { cookie });
    clients.push(c);
    expect(c.status).toBe(200);
    await eventually(
      async () => hub.streamCount,
      (k) => k >= 1,
    );
    await append('fleet-other', 's-x'); // another tenant's: never sent here
    const sent = [await append('fleet-board', 's-1'), await append('fleet-board', 's-2')];
    const got = await c.waitFor(2);
    expect(got.map(({ id, event, data }) => ({ id, event, data }))).toEqual(sent);
    c.close();

    const later = [await append('fleet-board', 's-1'), await append('fleet-board', 's-3')];
    const resumed = await openSse(`${url}/v1/live`, {
      authorization: `Bearer ${reader}`,
      'last-event-id': sent[1]!.id,
    });
    clients.push(resumed);
    expect((await resumed.waitFor(2)).map(({ id, event, data }) => ({ id, event, data }))).toEqual(later);
    resumed.close();

    const other = await openSse(`${url}/v1/live`, { authorization: `Bearer ${otherTenant}`, 'last-event-id': '0-0' });
    clients.push(other);
    expect((await other.waitFor(1)).map((m) => JSON.parse(m.data).session_id)).toEqual(['s-x']);
    other.close();
    expect(
      (await fetch(`${url}/v1/live`, { headers: { authorization: `Bearer ${reader}`, 'last-event-id': 'x' } })).status,
    ).toBe(400);
  });

  it('serves what-if scores of another model on the score route, and lists the models', async () => {
    const at = (ms: number) => new Date(T0 + ms);
    await fx.pool.query(
      `INSERT INTO sessions (session_id, tenant_id, status, started_at, last_seen_at, last_score_at)
       VALUES ('s-whatif', 'fleet-board', 'ended', $1, $2, $2)`,
      [at(0), at(70_000)],
    );
    const row = (table: string, model: string, ms: number, score: number) =>
      fx.pool.query(
        `INSERT INTO ${table} (model_version, session_id, ts, event_id, tenant_id, window_start_ts, score, level, ocular,
           driving, eeg, reaction, yawn, features, baseline_ready)
         VALUES ($1, 's-whatif', $2, gen_random_uuid(), 'fleet-board', $3, $4, 0, 0.5, 0.25, null, 0, 0, $5, false)`,
        [
          model,
          at(ms),
          at(ms - 60_000),
          score,
          JSON.stringify({ perclos: 0.1, sdlp_m: 0.2, eeg_ratio: null, lapses: 1 }),
        ],
      );
    await row('fatigue_scores', 'fatigue-v1', 65_000, 40);
    await row('fatigue_scores_whatif', 'fatigue-v2', 65_000, 55);
    await row('fatigue_scores_whatif', 'fatigue-v3', 65_000, 61);
    const get = async (path: string) => (await fx.get(path, reader)).json() as Promise<Record<string, unknown>>;
    const live = await get('/v1/sessions/s-whatif/scores?features=true');
    expect(live.scores).toEqual([
      expect.objectContaining({
        score: 40,
        model_version: 'fatigue-v1',
        features: expect.objectContaining({ perclos: 0.1, lapses: 1 }),
      }),
    ]);
    const v2 = await get('/v1/sessions/s-whatif/scores?model=fatigue-v2');
    expect(v2).toMatchObject({ model: 'fatigue-v2', scores: [{ score: 55, model_version: 'fatigue-v2' }] });
    expect((v2.scores as Record<string, unknown>[])[0]).not.toHaveProperty('features');
    const bucketed = await get('/v1/sessions/s-whatif/scores?model=fatigue-v3&bucket=1m');
    expect(bucketed.scores).toEqual([
      { bucket_start: new Date(T0 + 60_000).toISOString(), score_avg: 61, score_max: 61, level_max: 0, count: 1 },
    ]);
    expect(await get('/v1/sessions/s-whatif/models')).toEqual({
      session_id: 's-whatif',
      models: [
        { model_version: 'fatigue-v1', kind: 'live', scores: 1 },
        { model_version: 'fatigue-v2', kind: 'whatif', scores: 1 },
        { model_version: 'fatigue-v3', kind: 'whatif', scores: 1 },
      ],
    });
    const bad = await fx.get("/v1/sessions/s-whatif/scores?model=' OR 1=1", reader);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('model');
  });
});
