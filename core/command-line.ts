/**
 * What every `vigil` command shares: start-up (config validated once, telemetry started before the role's
 * modules load), one-shot commands that close what they opened, and argument parsers. Each area registers
 * its own commands (`<area>/cli.ts`, `register(program)`) so main.ts stays a list.
 */
import { InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from './config';
import { startTelemetry } from './telemetry';
import { registerRole } from './metrics';
import { messageOf } from './errors';
import type { Runtime } from './runtime';

export function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    process.stderr.write(`vigil: ${messageOf(err)}\n`);
    process.exit(2);
  }
}

/** Roles that run until a signal: they serve GET /metrics on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT. */
const LONG_RUNNING = new Set(['process', 'project', 'api', 'jobs', 'gateway']);

export async function boot(role: string): Promise<Runtime> {
  const config = configOrExit();
  const telemetry = startTelemetry(config.telemetry, `vigil-${role}`);
  const { Runtime } = await import('./runtime');
  const rt = new Runtime(config, role);
  rt.lifecycle.onClose('telemetry', () => telemetry.shutdown()); // first registered, last closed
  rt.lifecycle.installSignalHandlers();
  if (LONG_RUNNING.has(role)) {
    registerRole(role); // vigil_ready (0 until `started`), vigil_build_info, process metrics
    const { metricsHost: host, metricsPort: port } = config.telemetry;
    if (port > 0) {
      const { startMetricsServer } = await import('./metrics-server');
      const { server, url } = await startMetricsServer(host, port);
      rt.lifecycle.onClose('metrics server', () => new Promise((r) => server.close(r)));
      rt.log.info({ url }, 'metrics listening');
    }
  }
  return rt;
}

/** Runs a command that finishes by itself, then closes everything it opened. */
export async function oneShot(role: string, fn: (rt: Runtime) => Promise<void>): Promise<void> {
  const rt = await boot(role);
  try {
    await fn(rt);
  } finally {
    await rt.lifecycle.close();
  }
}

export const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};
/** "90", "90s", "5m", "1h" → milliseconds. */
export const duration = (v: string) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('must be a number with an optional unit ms, s, m or h, e.g. 90s or 5m');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
};
export const timestamp = (v: string) => {
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidArgumentError('must be an ISO-8601 time, e.g. 2026-01-01T08:00:00Z');
  return t;
};
