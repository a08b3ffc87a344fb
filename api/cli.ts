/**
 * `vigil api`: the query API server. Heavy modules load inside the action (telemetry starts first).
 */
import { type Command } from 'commander';
import { boot } from '../core/command-line';
import { started } from '../core/metrics';

export function register(program: Command): void {
  program
    .command('api')
    .description(
      'serve the query API: /v1 reads of sessions, scores, alerts, reports and exports, the live feed (SSE) and playback of a session, alert acknowledgements (→ commands topic), admin export jobs (API key of role reader or admin, filtered by its tenant, rate-limited per key and, before authentication, per client address); rebuilds, all-tenant admin actions and the full /health report need an operator key; /health/ready (cached about 1 s), /metrics (also on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT when that port is set; docs/metrics.md), OpenAPI at /docs',
    )
    .action(async () => {
      const rt = await boot('api');
      const { startApiServer } = await import('./server');
      await startApiServer(rt);
      started(rt);
    });
}
