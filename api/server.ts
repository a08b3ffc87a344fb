import type { Server } from 'node:http';
import type { Runtime } from '../core/runtime';
import { configureApiKeyCache } from '../core/api-keys';
import { createApp } from './app';

/**
 * `vigil api`: serves the HTTP API until SIGTERM/SIGINT. Resolves with the bound address once listening.
 * Redis is optional for readiness: reads fall back to PostgreSQL and the rate limiter fails open.
 */
export async function startApiServer(rt: Runtime): Promise<{ server: Server; url: string }> {
  const { pool, redis, config } = rt;
  const admin = rt.kafka.admin();
  await admin
    .connect()
    .catch((err) => rt.log.warn({ err: err.message }, 'Kafka admin not connected yet; readiness will say so'));
  rt.lifecycle.onClose('kafka admin', () => admin.disconnect());
  const app = createApp({
    config,
    pool,
    redis,
    log: rt.log,
    topics: rt.topics,
    verifier: configureApiKeyCache(pool, { ttlMs: config.apiKeys.cacheTtlMs }),
    checks: {
      postgres: () => pool.query('SELECT 1'),
      redis: { required: false, check: () => redis.ping() },
      kafka: () => admin.describeCluster(),
      schema_registry: async () => {
        const res = await fetch(`${config.schemaRegistryUrl}/subjects`);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
      },
    },
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.host, () => resolve(s));
    s.once('error', reject);
  });
  rt.lifecycle.onClose('http server', () => new Promise((r) => server.close(r)));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.api.port;
  const url = `http://${config.api.host}:${port}`;
  rt.log.info({ url }, 'api listening');
  return { server, url };
}
