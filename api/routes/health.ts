import { Router, type RequestHandler } from 'express';

/**
 * A named dependency check: resolves when healthy, rejects (or times out) otherwise. A check that
 * resolves to `{ report: {...} }` has that report shown beside its status (e.g. the projection lag).
 */
export type Check = () => Promise<unknown>;

/**
 * A dependency and whether readiness needs it. An optional one (e.g. Redis for the gateway, which
 * fails open without its rate counters) only makes the service `degraded` (200) when down; a
 * required one makes it unready (503), which takes the instance out of the load balancer.
 */
export interface DependencyCheck {
  check: Check;
  required: boolean;
}

const TIMEOUT_MS = 2_000;

async function run(
  check: Check,
): Promise<{ status: 'up' | 'down'; latency_ms: number; error?: string; report?: unknown }> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      }),
    ]);
    const report = (result as { report?: unknown } | null | undefined)?.report;
    return { status: 'up', latency_ms: Math.round(performance.now() - t0), ...(report ? { report } : {}) };
  } catch (err) {
    return {
      status: 'down',
      latency_ms: Math.round(performance.now() - t0),
      error: err instanceof Error ? err.message : String(err),
      ...((err as { report?: unknown }).report ? { report: (err as { report?: unknown }).report } : {}),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/health/live`: the process answers. `/health/ready`: every dependency is checked in parallel with
 * a 2 s bound and reported; 503 when a required one is down (an application/problem+json body whose
 * `detail` names the failed checks, with every check's result in `checks`), `degraded` (200) when
 * only optional ones are. A plain `Check` counts as required. Both need no credentials and say
 * nothing beyond up/down, latency and the failure message.
 */
export function healthRouter(checks: Record<string, Check | DependencyCheck>): Router {
  const deps = Object.entries(checks).map(([name, c]) => ({
    name,
    ...(typeof c === 'function' ? { check: c, required: true } : c),
  }));
  const r = Router();
  r.get('/health/live', (_req, res) => {
    res.json({ status: 'up' });
  });
  r.get('/health/ready', async (_req, res) => {
    const results = await Promise.all(deps.map((d) => run(d.check)));
    const report = Object.fromEntries(deps.map((d, i) => [d.name, { ...results[i], required: d.required }]));
    const failed = deps.filter((d, i) => d.required && results[i]!.status === 'down').map((d) => d.name);
    const degraded = results.some((x) => x.status === 'down');
    if (failed.length) {
      res
        .status(503)
        .type('application/problem+json')
        .json({
          type: 'https://vigil.dev/problems/not-ready',
          title: 'Service Unavailable',
          status: 503,
          detail: `not ready: ${failed.join(', ')} down`,
          failed,
          checks: report,
        });
      return;
    }
    res.json({ status: degraded ? 'degraded' : 'up', checks: report });
  });
  return r;
}

/**
 * `/health`: the full report (versions, TimescaleDB, lag, queues, process and host figures). It tells
 * an attacker what runs where, so it sits behind `guard` (the API mounts an admin key check).
 */
export function fullHealthRouter(report: (() => Promise<unknown>) | undefined, guard: RequestHandler[]): Router {
  const r = Router();
  if (report)
    r.get('/health', ...guard, async (_req, res) => {
      res.json(await report());
    });
  return r;
}

/** A readiness check that fails when `lag()` exceeds `max` (reports the lag either way). */
export function lagCheck<T extends { total: number }>(lag: () => Promise<T>, max: number): Check {
  return async () => {
    const report = await lag();
    if (report.total > max)
      throw Object.assign(new Error(`projection lag ${report.total} > ${max} (VIGIL_READY_MAX_LAG)`), { report });
    return { report };
  };
}
