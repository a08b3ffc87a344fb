import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Pool } from 'pg';
import type { Page } from 'playwright-core';
import { createApiKey } from '../core/api-keys';
import { projectRedis, defaultRedisModelOptions } from '../projections/redis/model';
import { redisScripts } from '../projections/redis/scripts';
import type { FatigueScored } from '../schemas/types';
import { launchChromium } from './browser';
import { machine, percentile, round, spread, table, writeResults } from './lib';
import { Pipeline, sleep } from './pipeline';

/**
 * `npm run bench -- ui [--sessions n] [--runs n] [--seconds n]`: the fleet board in Chromium with
 * SESSIONS live sessions, each scored every 5 s (SESSIONS / 5 updates per second over `/v1/live`).
 *
 * Set-up (Pipeline): a fresh migrated database and own key prefix; `vigil api` as its own process.
 * Seeded directly: SESSIONS active sessions of tenant `bench-ui`, one reader key. Updates are written
 * by the Redis read model's own operations (projectRedis + its Lua scripts, as `vigil project` would),
 * so they reach the browser through the tenant feed, the API's feed hub and its SSE route.
 *
 * Measured in the page (api/ui/store.js keeps them): the time of each fleet render (one per animation
 * frame with news: every changed row's cells written, rows re-ordered by risk), and each RUN's
 * renders and live updates received; every 10 s the page's JS heap after a forced GC (CDP
 * HeapProfiler.collectGarbage, then Performance.getMetrics) and its DOM node count, across all runs
 * (one page for the whole bench: RUNS × SECONDS of updates, 5 minutes by default).
 */
interface Options {
  sessions: number;
  runs: number;
  seconds: number;
}

function options(argv: string[]): Options {
  const o: Options = { sessions: 500, runs: 3, seconds: 100 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = Number(argv[++i]);
    if (a === '--sessions') o.sessions = v;
    else if (a === '--runs') o.runs = v;
    else if (a === '--seconds') o.seconds = v;
    else throw new Error(`unknown option ${a}; use --sessions n --runs n --seconds n`);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${a} must be a positive integer`);
  }
  return o;
}

const TENANT = 'bench-ui';
const SCORE_EVERY_MS = 5_000;

interface RunResult {
  run: number;
  updates_received: number;
  renders: number;
  render_ms: { p50: number; p90: number; p99: number; max: number; mean: number };
}

interface MemorySample {
  at_s: number;
  js_heap_mib: number;
  dom_nodes: number;
}

function score(sessionId: string, i: number, ts: number): FatigueScored {
  // A slow wave per session, so levels and the risk order keep changing.
  const s = Math.max(0, Math.min(100, 45 + 40 * Math.sin(ts / 60_000 + i)));
  return {
    event_id: randomUUID(),
    tenant_id: TENANT,
    session_id: sessionId,
    ts,
    window_start_ts: ts - 60_000,
    window_end_ts: ts,
    score: Math.round(s * 10) / 10,
    level: s >= 70 ? 2 : s >= 50 ? 1 : 0,
    components: { ocular: s / 100, driving: 0.3, eeg: null, reaction: 0, yawn: 0 },
    features: {
      perclos: s / 400,
      long_blink_share: 0.1,
      sdlp_m: 0.2,
      lane_departures: 0,
      eeg_ratio: null,
      eeg_ratio_z: null,
      lapses: 0,
      yawns: 0,
    },
    baseline_ready: true,
    model_version: 'fatigue-v1',
  };
}

/** Rows of the fleet table (evaluated in the page; this file is compiled without the DOM library). */
const rowsAtLeast = (n: number): boolean =>
  (
    globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }
  ).document.querySelectorAll('#fleet-body tr').length >= n;

async function pageFigures(page: Page) {
  return page.evaluate(() => {
    const s = (
      globalThis as unknown as { vigilBoard: { stats: { renderMs: number[]; updates: number; renders: number } } }
    ).vigilBoard.stats;
    const out = { renderMs: s.renderMs.splice(0), updates: s.updates, renders: s.renders };
    return out;
  });
}

export async function uiBench(argv: string[]): Promise<void> {
  const o = options(argv);
  const log = (s: string) => process.stdout.write(`[ui] ${s}\n`);
  const atStart = machine();
  const p = await Pipeline.create({ name: 'bench-ui', partitions: 3 });
  const redis = new Redis(p.config.redisUrl, { maxRetriesPerRequest: 2 });
  const pool = new Pool({ connectionString: p.db.url, max: 2 });
  pool.on('error', (err) => log(`bench pool: ${err.message}`));
  const chromium = await launchChromium(['--enable-precise-memory-info']);
  let writer: NodeJS.Timeout | undefined;
  try {
    const ids = Array.from({ length: o.sessions }, (_, i) => `bench-ui-${String(i).padStart(4, '0')}`);
    await pool.query(
      `INSERT INTO sessions (session_id, tenant_id, status, driver_id, vehicle_id, started_at, last_seen_at)
       SELECT id, $2, 'active', 'driver-' || n, 'truck-' || n, now(), now()
         FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)`,
      [ids, TENANT],
    );
    const { key } = await createApiKey(pool, { tenantId: TENANT, role: 'reader', label: 'ui bench' });
    await p.startApi();
    log(`api at ${p.apiUrl}, ${o.sessions} sessions seeded`);

    let offset = 0;
    const write = async (sessionId: string, i: number) => {
      const ops = projectRedis(
        [{ topic: 'scores', partition: 0, offset: String(offset++), value: score(sessionId, i, Date.now()) }],
        { prefix: p.config.topicPrefix, ...defaultRedisModelOptions },
      );
      for (const op of ops) {
        const s = redisScripts[op.script];
        await redis.eval(s.lua, s.numberOfKeys, ...op.keys, ...op.args);
      }
    };
    // Each session scores every 5 s, spread evenly: one tick every 5000 / SESSIONS ms (batched per 50 ms).
    let next = 0;
    const perTick = Math.max(1, Math.round((o.sessions * 50) / SCORE_EVERY_MS));
    writer = setInterval(() => {
      for (let k = 0; k < perTick; k++) {
        const i = next++ % o.sessions;
        void write(ids[i]!, i).catch((err: Error) => log(`write failed: ${err.message}`));
      }
    }, 50);

    const context = await chromium.browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${p.apiUrl}/ui/`);
    await page.fill('#signin-key', key);
    await page.click('#signin-form button[type=submit]');
    await page.waitForFunction(rowsAtLeast, o.sessions, { timeout: 60_000 });
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    const memory: MemorySample[] = [];
    const t0 = Date.now();
    const sampleMemory = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      const { metrics } = await cdp.send('Performance.getMetrics');
      const m = (name: string) => metrics.find((x) => x.name === name)?.value ?? NaN;
      memory.push({
        at_s: Math.round((Date.now() - t0) / 1000),
        js_heap_mib: round(m('JSHeapUsedSize') / 2 ** 20, 2),
        dom_nodes: m('Nodes'),
      });
    };
    await pageFigures(page); // drop the initial load's renders
    await sampleMemory();
    const runs: RunResult[] = [];
    for (let run = 1; run <= o.runs; run++) {
      const before = await pageFigures(page);
      for (let s = 0; s < o.seconds; s += 10) {
        await sleep(Math.min(10, o.seconds - s) * 1000);
        await sampleMemory();
      }
      const after = await pageFigures(page);
      const ms = [...after.renderMs].sort((a, b) => a - b);
      runs.push({
        run,
        updates_received: after.updates - before.updates,
        renders: after.renders - before.renders,
        render_ms: {
          p50: round(percentile(ms, 50), 2),
          p90: round(percentile(ms, 90), 2),
          p99: round(percentile(ms, 99), 2),
          max: round(ms.at(-1) ?? NaN, 2),
          mean: round(ms.reduce((a, b) => a + b, 0) / Math.max(1, ms.length), 2),
        },
      });
      log(`run ${run}: ${JSON.stringify(runs.at(-1))}`);
    }
    const heap = memory.map((m) => m.js_heap_mib);
    const firstMinute = memory.filter((m) => m.at_s <= 60).map((m) => m.js_heap_mib);
    const lastMinute = memory.filter((m) => m.at_s >= memory.at(-1)!.at_s - 60).map((m) => m.js_heap_mib);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const result = {
      sessions: o.sessions,
      updates_per_s_offered: round(o.sessions / (SCORE_EVERY_MS / 1000), 3),
      seconds_per_run: o.seconds,
      runs,
      render_ms_p50: spread(runs.map((r) => r.render_ms.p50)),
      render_ms_p99: spread(runs.map((r) => r.render_ms.p99)),
      updates_per_s_received: spread(runs.map((r) => r.updates_received / o.seconds)),
      memory: {
        samples: memory,
        js_heap_mib_first_minute_mean: round(mean(firstMinute), 2),
        js_heap_mib_last_minute_mean: round(mean(lastMinute), 2),
        js_heap_mib_min: Math.min(...heap),
        js_heap_mib_max: Math.max(...heap),
      },
      console_errors: errors,
      machine_at_start: atStart,
      note: 'shared 2-core machine (other engineers running tests meanwhile); render time is wall time in the page',
    };
    const md = [
      `Fleet board in headless Chromium, ${o.sessions} live sessions, ${result.updates_per_s_offered} score updates/s over /v1/live, ${o.runs} runs of ${o.seconds} s in one page. Shared 2-core machine.`,
      '',
      table(
        ['run', 'updates received', 'renders', 'render p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        runs.map((r) => [
          r.run,
          r.updates_received,
          r.renders,
          r.render_ms.p50,
          r.render_ms.p90,
          r.render_ms.p99,
          r.render_ms.max,
        ]),
      ),
      '',
      `Render p50 median ${result.render_ms_p50.median} ms (min ${result.render_ms_p50.min}, max ${result.render_ms_p50.max}); p99 median ${result.render_ms_p99.median} ms (min ${result.render_ms_p99.min}, max ${result.render_ms_p99.max}).`,
      '',
      `JS heap after GC: first minute mean ${result.memory.js_heap_mib_first_minute_mean} MiB, last minute mean ${result.memory.js_heap_mib_last_minute_mean} MiB (min ${result.memory.js_heap_mib_min}, max ${result.memory.js_heap_mib_max}) over ${memory.at(-1)!.at_s} s; DOM nodes ${memory[0]!.dom_nodes} → ${memory.at(-1)!.dom_nodes}. Console errors: ${errors.length}.`,
    ].join('\n');
    writeResults('ui', result, md);
    await context.close();
  } finally {
    if (writer) clearInterval(writer);
    await chromium.close();
    await pool.end().catch(() => {});
    const keys = await redis.keys(`${p.config.topicPrefix}:*`).catch(() => [] as string[]);
    if (keys.length) await redis.del(...keys).catch(() => 0);
    redis.disconnect();
    await p.close();
  }
}
