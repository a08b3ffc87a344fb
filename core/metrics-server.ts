import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricsHandler } from './metrics';

/**
 * `GET /metrics` (Prometheus text of core/metrics.ts's registry) on `host:port`, for every long-running
 * role (`VIGIL_METRICS_HOST:VIGIL_METRICS_PORT`, started by core/command-line.ts `boot`). Anything else
 * is 404. Port 0 here means "any free port" (tests); the setting's 0 (off) never reaches this.
 */
export async function startMetricsServer(host: string, port: number): Promise<{ server: Server; url: string }> {
  const handle = metricsHandler();
  const server = createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    if ((req.method === 'GET' || req.method === 'HEAD') && pathname === '/metrics') return handle(req, res);
    res.statusCode = 404;
    res.setHeader('content-type', 'text/plain');
    res.end('not found: GET /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return { server, url: `http://${shown}:${addr.port}/metrics` };
}
