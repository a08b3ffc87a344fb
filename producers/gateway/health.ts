import { Router } from 'express';
import type { Check } from '../../api/routes/health';

/**
 * The gateway's `/health/live` and `/health/ready`. Like the API's, each dependency is checked in
 * parallel with a 2 s bound and reported; unlike it, a dependency can be optional: Redis only holds
 * the rate counters and the gateway fails open without it, so Redis down makes the gateway
 * `degraded` (200) rather than unready (503), which would take every instance out of the load
 * balancer and refuse the telemetry the fail-open rule is there to keep.
 */
export interface DependencyCheck {
  check: Check;
  /** Unready (503) when this one is down; otherwise the gateway is only degraded. */
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

export function gatewayHealthRouter(checks: Record<string, DependencyCheck>): Router {
  const r = Router();
  r.get('/health/live', (_req, res) => {
    res.json({ status: 'up' });
  });
  r.get('/health/ready', async (_req, res) => {
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((n) => run(checks[n]!.check)));
    const report = Object.fromEntries(names.map((n, i) => [n, { ...results[i], required: checks[n]!.required }]));
    const unready = names.some((n, i) => checks[n]!.required && results[i]!.status === 'down');
    const degraded = results.some((x) => x.status === 'down');
    res.status(unready ? 503 : 200).json({ status: unready ? 'down' : degraded ? 'degraded' : 'up', checks: report });
  });
  return r;
}
