import { Router } from 'express';

/** A named dependency check: resolves when healthy, rejects (or times out) otherwise. */
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

async function run(check: Check): Promise<{ status: 'up' | 'down'; latency_ms: number; error?: string }> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      }),
    ]);
    return { status: 'up', latency_ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return {
      status: 'down',
      latency_ms: Math.round(performance.now() - t0),
      error: err instanceof Error ? err.message : String(err),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/health/live`: the process answers. `/health/ready`: every dependency is checked in parallel with
 * a 2 s bound and reported; 503 when a required one is down, `degraded` (200) when only optional
 * ones are. A plain `Check` counts as required.
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
    const unready = deps.some((d, i) => d.required && results[i]!.status === 'down');
    const degraded = results.some((x) => x.status === 'down');
    res.status(unready ? 503 : 200).json({ status: unready ? 'down' : degraded ? 'degraded' : 'up', checks: report });
  });
  return r;
}
