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

type CheckResult = Awaited<ReturnType<typeof run>> & { required: boolean };

export interface Readiness {
  /** Every check run now, with latency and the failure message of each: for operators only. */
  detailed(): Promise<{ ready: boolean; degraded: boolean; failed: string[]; checks: Record<string, CheckResult> }>;
}

/** Runs the checks in parallel (each bounded to 2 s) and says which required ones failed. */
export function readiness(checks: Record<string, Check | DependencyCheck>): Readiness {
  const deps = Object.entries(checks).map(([name, c]) => ({
    name,
    ...(typeof c === 'function' ? { check: c, required: true } : c),
  }));
  return {
    async detailed() {
      const results = await Promise.all(deps.map((d) => run(d.check)));
      const checks = Object.fromEntries(deps.map((d, i) => [d.name, { ...results[i]!, required: d.required }]));
      const failed = deps.filter((d, i) => d.required && results[i]!.status === 'down').map((d) => d.name);
      return { ready: failed.length === 0, degraded: results.some((x) => x.status === 'down'), failed, checks };
    },
  };
}

interface HealthOptions {
  /**
   * How long one readiness answer is reused (default 1 000 ms): probes and anonymous callers cannot
   * make the service hammer its dependencies; concurrent requests share one run.
   */
  readyCacheMs?: number;
}

/**
 * `/health/live`: the process answers. `/health/ready`: every dependency is checked in parallel with
 * a 2 s bound; 503 when a required one is down (an application/problem+json body whose `detail` names
 * the failed checks), `degraded` (200) when only optional ones are. Both need no credentials, so the
 * answer says only, per dependency, `up` or `down` and whether it is required (plus a check's
 * numeric `report`, e.g. the projection lag): never a dependency's error text, which could name hosts,
 * users or versions (operators read it in `/health`). The answer is computed at most once per
 * `readyCacheMs` (about 1 s) and shared. A plain `Check` counts as required.
 */
export function healthRouter(checks: Record<string, Check | DependencyCheck>, opts: HealthOptions = {}): Router {
  const probe = readiness(checks);
  const cacheMs = opts.readyCacheMs ?? 1_000;
  let cached: { at: number; answer: Promise<{ status: number; body: unknown }> } | undefined;
  const answer = async (): Promise<{ status: number; body: unknown }> => {
    const r = await probe.detailed();
    const brief = Object.fromEntries(
      Object.entries(r.checks).map(([name, c]) => [
        name,
        { status: c.status, required: c.required, ...(c.report ? { report: c.report } : {}) },
      ]),
    );
    if (!r.ready) {
      return {
        status: 503,
        body: {
          type: 'https://vigil.dev/problems/not-ready',
          title: 'Service Unavailable',
          status: 503,
          detail: `not ready: ${r.failed.join(', ')} down`,
          failed: r.failed,
          checks: brief,
        },
      };
    }
    return { status: 200, body: { status: r.degraded ? 'degraded' : 'up', checks: brief } };
  };
  const r = Router();
  r.get('/health/live', (_req, res) => {
    res.json({ status: 'up' });
  });
  r.get('/health/ready', async (_req, res) => {
    const now = performance.now();
    if (!cached || now - cached.at >= cacheMs) {
      const entry = { at: now, answer: answer() };
      cached = entry;
      // A run that throws is not kept.
      entry.answer.catch(() => {
        if (cached === entry) cached = undefined;
      });
    }
    const { status, body } = await cached.answer;
    if (status === 503) res.status(503).type('application/problem+json').json(body);
    else res.json(body);
  });
  return r;
}

/**
 * `/health`: the full report (versions, TimescaleDB, lag, queues, process and host figures) and, with
 * `checks`, the readiness checks run now with their latency and error text. It tells an attacker what
 * runs where, so it sits behind `guard` (the API mounts an operator key check).
 */
export function fullHealthRouter(
  report: (() => Promise<unknown>) | undefined,
  guard: RequestHandler[],
  checks?: Record<string, Check | DependencyCheck>,
): Router {
  const r = Router();
  const probe = checks ? readiness(checks) : undefined;
  if (report)
    r.get('/health', ...guard, async (_req, res) => {
      const [full, ready] = await Promise.all([report(), probe?.detailed()]);
      res.json(ready ? { ...(full as object), readiness: ready } : full);
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
