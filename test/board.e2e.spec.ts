import { readFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { sessionEvents } from '../producers/simulator/session';
import type { TopicKey, ValueOf } from '../schemas/catalogue';
import { redisKeys } from '../core/redis-keys';
import { createRedis, type Redis } from '../core/redis';
import { launchChromium, type LaunchedBrowser } from '../bench/browser';
import { eventually, freePort, processEnv, testConfig } from './support/env';
import { pipelineFixture, type PipelineFixture } from './support/pipeline';
import { processGroup, runVigil, type VigilProcessGroup } from './support/processes';

/**
 * The fleet board in a real browser (Debian's Chromium through playwright-core) against the whole
 * pipeline as separate processes (process, project, api): a supervisor signs in with a reader key,
 * sees the simulated sessions by risk, receives a live update within 2 s, opens a session's timeline,
 * acknowledges an alert with the keyboard and sees it acknowledged, and signs out. Every view passes
 * axe-core without serious or critical violations, and the page logs no console error.
 *
 * VIGIL_UI_SCREENSHOTS=<folder> also writes a PNG of each view there (docs/ holds the README's).
 */
const TENANT = 'fleet-board-e2e';
const SHOTS = process.env.VIGIL_UI_SCREENSHOTS;
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  nodes: unknown[];
}

describe('fleet board in Chromium: sign in, live fleet, alerts, session view, sign out', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let api: string;
  let readerKey: string;
  let vigil: VigilProcessGroup | undefined;
  let chromium: LaunchedBrowser | undefined;
  let context: BrowserContext;
  let page: Page;
  let redis: Redis;
  const consoleErrors: string[] = [];
  const now = Math.floor(Date.now() / 1000) * 1000;

  /** Publishes a simulated session; `running` leaves out its SessionEnded. */
  async function publish(
    index: number,
    profile: 'alert' | 'severe',
    startTs: number,
    durationMs: number,
    running: boolean,
  ) {
    const plan = { seed: 16, index, tenantId: TENANT, startTs, durationMs, profile };
    const byTopic = new Map<TopicKey, unknown[]>();
    let sessionId = '';
    for (const e of sessionEvents(plan)) {
      sessionId = e.event.session_id;
      if (running && e.topic === 'sessions' && e.event.event.type === 'SessionEnded') continue;
      byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e.event]);
    }
    for (const [key, events] of byTopic) await fx.publisher.publish(key, events as ValueOf<typeof key>[]);
    await fx.publisher.flush();
    return sessionId;
  }

  const shot = async (name: string) => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `board-${name}.png`), fullPage: false });
  };

  async function axe(): Promise<AxeViolation[]> {
    await page.evaluate(AXE);
    const result = (await page.evaluate('axe.run(document, { resultTypes: ["violations"] })')) as {
      violations: AxeViolation[];
    };
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  }

  let severe = '';
  let calm = '';

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    redis = createRedis(config.redisUrl);
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    const env = processEnv(config, { VIGIL_DATABASE_URL: fx.databaseUrl, VIGIL_API_PORT: String(port) });
    readerKey = (await runVigil(['keys', 'create', '--tenant', TENANT, '--role', 'reader'], env)).match(/vgl_\S+/)![0];
    vigil = processGroup(env);
    for (const role of ['process', 'project', 'api']) vigil.start([role]);
    // A severe and a calm session, running (no SessionEnded), from 280 s ago to 50 s ahead.
    severe = await publish(0, 'severe', now - 280_000, 330_000, true);
    calm = await publish(1, 'alert', now - 280_000, 330_000, true);
    await eventually(
      () =>
        fetch(`${api}/health/live`).then(
          (r) => r.status,
          () => 0,
        ),
      (s) => s === 200,
      60_000,
    );
    chromium = await launchChromium();
    context = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });

  afterAll(async () => {
    await context?.close().catch(() => {});
    await chromium?.close();
    await vigil?.stopAll('SIGTERM');
    await redis?.quit().catch(() => {});
    await fx?.close();
  });

  it('signs in with a reader key into an HttpOnly SameSite=Strict cookie; the key is in no storage nor URL', async () => {
    await page.goto(`${api}/`);
    await page.locator('#signin-key').waitFor();
    await shot('signin');
    await page.fill('#signin-key', readerKey);
    await page.keyboard.press('Enter');
    await page.locator('#view-fleet').waitFor({ state: 'visible' });
    expect(await page.textContent('#who-text')).toBe(`${TENANT} · reader`);
    const cookies = await context.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([['vigil_session', true, 'Strict']]);
    // vgl_<12-character id>_<secret>; the secret is base64url and may itself hold '_'.
    expect(cookies[0]!.value).not.toContain(readerKey.slice('vgl_'.length + 13));
    expect(await page.evaluate('JSON.stringify([localStorage.length, sessionStorage.length])')).toBe('[0,0]');
    expect(page.url()).not.toContain(readerKey);
    expect(await page.inputValue('#signin-key')).toBe('');
  });

  it('shows the simulated sessions, the most at risk first, level as colour and text', async () => {
    const rows = page.locator('#fleet-body tr');
    await eventually(
      async () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-session'))),
      (ids) => ids.includes(severe) && ids.includes(calm),
      90_000,
    );
    // The severe session outranks the calm one once its level rose (scores arrive live meanwhile).
    const first = await eventually(
      async () => ({
        id: await rows.first().getAttribute('data-session'),
        level: await rows.first().locator('.lvl').textContent(),
      }),
      (f) => f.id === severe && f.level !== 'normal' && f.level !== 'no score',
      90_000,
    );
    expect(['drowsy', 'severe']).toContain(first.level);
    expect(await rows.first().locator('.lvl').getAttribute('class')).toMatch(/lvl-[12]/);
    await shot('fleet');
    expect(await axe()).toEqual([]);
  });

  it('receives a live update within 2 s of it entering the tenant feed', async () => {
    const feed = redisKeys(config.topicPrefix).tenantFeed(TENANT);
    const newcomer = await publish(2, 'alert', Date.now() - 60_000, 120_000, true);
    const entered = await eventually(
      async () => (await redis.xrevrange(feed, '+', '-', 'COUNT', 200)).some(([, f]) => f.join(' ').includes(newcomer)),
      (found) => found,
      90_000,
    );
    expect(entered).toBe(true);
    const t0 = performance.now();
    await page.locator(`#fleet-body tr[data-session="${newcomer}"]`).waitFor({ timeout: 2_000 });
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('shows the session timeline with components, alert markers, features and the range picker', async () => {
    await page.click(`#fleet-body tr[data-session="${severe}"] a`);
    await page.locator('#view-session').waitFor({ state: 'visible' });
    await page.locator('#chart canvas').waitFor();
    expect(await page.textContent('#session-title')).toBe(`Session ${severe}`);
    await eventually(
      async () => page.textContent('#features'),
      (t) => (t ?? '').includes('PERCLOS'),
      10_000,
    );
    await shot('session');
    expect(await axe()).toEqual([]);
    await page.selectOption('#range-bucket', '1m');
    await eventually(
      async () => page.textContent('#chart-legend'),
      (t) => (t ?? '').includes('(1m)'),
      10_000,
    );
  });

  it('acknowledges an alert from the board with the keyboard and shows it acknowledged', async () => {
    // A fresh severe session from 280 s ago to 50 s ahead (as in ack.e2e): the acknowledgement, stamped
    // now, is behind the session's watermark and takes effect at once (one stamped after the session's
    // newest event would wait, in event time, for the session's data to pass it).
    const acking = await publish(3, 'severe', Math.floor(Date.now() / 1000) * 1000 - 280_000, 330_000, true);
    // The alerts projection caught up (as in ack.e2e): the processor holds what the board lists.
    const alertsLag = async () => {
      const ready = (await (await fetch(`${api}/health/ready`)).json()) as {
        checks?: { projection_lag?: { report?: { byProjection?: Record<string, number> } } };
      };
      return ready.checks?.projection_lag?.report?.byProjection?.alerts ?? -1;
    };
    const activeLevelAlert = async () => {
      const res = await fetch(`${api}/v1/sessions/${acking}/alerts`, {
        headers: { authorization: `Bearer ${readerKey}` },
      });
      if (res.status !== 200 || (await alertsLag()) > 3) return undefined;
      const { alerts } = (await res.json()) as { alerts: { alert_id: string; reason: string; status: string }[] };
      return alerts.find((a) => (a.reason === 'drowsy' || a.reason === 'severe') && a.status === 'active');
    };
    const alertId = (await eventually(activeLevelAlert, (a) => a !== undefined, 90_000))!.alert_id;
    await page.goto(`${api}/ui/#/alerts`);
    await page.locator('#view-alerts').waitFor({ state: 'visible' });
    const row = page.locator(`#alerts-body tr[data-alert="${alertId}"]`);
    await row.waitFor({ timeout: 30_000 });
    await shot('alerts');
    expect(await axe()).toEqual([]);
    await row.locator('button.ack').focus();
    await page.keyboard.press('Enter');
    await eventually(
      async () => row.locator('td.status').textContent(),
      (s) => s === 'acknowledged',
      60_000,
    );
    expect(await row.locator('td.status').textContent()).toBe('acknowledged');
    const res = await fetch(`${api}/v1/alerts?state=acknowledged`, {
      headers: { authorization: `Bearer ${readerKey}` },
    });
    const acked = ((await res.json()) as { alerts: { alert_id: string; acknowledged_by: string }[] }).alerts;
    expect(acked.find((a) => a.alert_id === alertId)?.acknowledged_by).toBe(
      `key:${/^vgl_([^_]+)_/.exec(readerKey)![1]} (fleet board)`,
    );
  });

  it('signs out: the cookie is gone and the API no longer answers the page', async () => {
    await page.click('#sign-out');
    await page.locator('#view-signin').waitFor({ state: 'visible' });
    expect((await context.cookies()).filter((c) => c.name === 'vigil_session')).toEqual([]);
    const status = await page.evaluate('fetch("/v1/sessions").then((r) => r.status)');
    expect(status).toBe(401);
    // The one failed request: this spec's own, after sign-out.
    expect(consoleErrors).toEqual([
      'Failed to load resource: the server responded with a status of 401 (Unauthorized)',
    ]);
  });
});
