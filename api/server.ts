import type { Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { repoRoot } from '../core/paths';
import type { Runtime } from '../core/runtime';
import { configureApiKeyCache } from '../core/api-keys';
import { createApp } from './app';
import { FeedHub } from './feed-hub';
import { endAllSseStreams } from './sse';
import { fullHealth, projectionLag } from './health-report';
import { lagCheck } from '../core/http/health';
import { ADMIN_QUEUES } from './admin-queues';
import { startBoss, stopBoss, type PgBoss } from '../core/jobs';
import { messageOf } from '../core/errors';
import { registryHeaders } from '../core/serde';

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
  // Commands (POST /v1/alerts/:id/ack): an idempotent producer and the commands schema. Without Kafka
  // or the registry at start the API still serves reads; the ack route answers 503 until restart.
  const producer = rt.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const commandsReady = await Promise.all([producer.connect(), rt.serde.register(['commands'])]).then(
    () => true,
    (err) => {
      rt.log.warn({ err: messageOf(err) }, 'command producer not ready; POST /v1/alerts/:id/ack answers 503');
      return false;
    },
  );
  rt.lifecycle.onClose('command producer', () => producer.disconnect());
  // Admin jobs: send-only pg-boss (the `vigil jobs` worker runs them and pg-boss's maintenance).
  let boss: PgBoss | undefined;
  try {
    boss = await startBoss(config.database, {
      queues: Object.values(ADMIN_QUEUES),
      log: rt.log,
      supervise: false,
      poolMax: 2,
      applicationName: 'vigil-api-jobs',
    });
    const b = boss;
    rt.lifecycle.onClose('pg-boss', () => stopBoss(b));
  } catch (err) {
    rt.log.warn({ err: messageOf(err) }, 'pg-boss not started; admin job routes answer 503');
  }
  // One reader of the live feed streams for every SSE client of this process.
  const hub = new FeedHub(redis, rt.log);
  rt.lifecycle.onClose('feed hub', () => hub.close());
  const version = String(
    JSON.parse(await readFile(path.join(repoRoot(), 'package.json'), 'utf8').catch(() => '{}')).version ?? 'unknown',
  );
  const lag = () => projectionLag(pool, admin, redis, config.topicPrefix);
  const app = createApp({
    config,
    pool,
    redis,
    log: rt.log,
    topics: rt.topics,
    verifier: configureApiKeyCache(pool, { ttlMs: config.apiKeys.cacheTtlMs }),
    ...(commandsReady ? { producer, serde: rt.serde } : {}),
    boss,
    live: { hub },
    healthReport: () => fullHealth({ pool, redis, admin, prefix: config.topicPrefix, version }),
    checks: {
      postgres: () => pool.query('SELECT 1'),
      redis: { required: false, check: () => redis.ping() },
      kafka: () => admin.describeCluster(),
      schema_registry: async () => {
        const res = await fetch(`${config.schemaRegistryUrl}/subjects`, {
          headers: registryHeaders(config.schemaRegistryAuth),
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
      },
      projection_lag: lagCheck(lag, config.health.readyMaxLag),
    },
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.host, () => resolve(s));
    s.once('error', reject);
  });
  rt.lifecycle.onClose('http server', () => {
    const closed = new Promise((r) => server.close(r));
    // SSE responses never end by themselves: end them so close() can finish (clients reconnect).
    const streams = endAllSseStreams();
    if (streams) rt.log.info({ streams }, 'ended open SSE streams');
    server.closeIdleConnections();
    return closed;
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.api.port;
  const url = `http://${config.api.host}:${port}`;
  rt.log.info({ url }, 'api listening');
  return { server, url };
}
