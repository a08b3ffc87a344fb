import { Router } from 'express';

/** A named dependency check: resolves when healthy, rejects (or times out) otherwise. */
export type Check = () => Promise<unknown>;

const TIMEOUT_MS = 2_000;

async function run(check: Check): Promise<{ status: 'up' | 'down'; latency_ms: number; error?: string }> {
  const t0 = performance.now();
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS).unref(),
      ),
    ]);
    return { status: 'up', latency_ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return {
      status: 'down',
      latency_ms: Math.round(performance.now() - t0),
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

/**
 * `/health/live`: the process answers. `/health/ready`: every dependency answers (each reported,
 * checked in parallel with a 2 s bound); 503 when any is down, so a load balancer stops routing here.
 */
export function healthRouter(checks: Record<string, Check>): Router {
  const r = Router();
  r.get('/health/live', (_req, res) => {
    res.json({ status: 'up' });
  });
  r.get('/health/ready', async (_req, res) => {
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((n) => run(checks[n]!)));
    const report = Object.fromEntries(names.map((n, i) => [n, results[i]]));
    const up = results.every((x) => x.status === 'up');
    res.status(up ? 200 : 503).json({ status: up ? 'up' : 'down', checks: report });
  });
  return r;
}
