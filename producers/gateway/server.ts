import type { Server } from 'node:http';
import type { Runtime } from '../../core/runtime';
import { configureApiKeyCache } from '../../core/api-keys';
import { messageOf } from '../../core/errors';
import { registryHeaders } from '../../core/serde';
import { Publisher } from '../publisher';
import { createGatewayApp } from './app';
import { streams } from './batch';
import { EventRateLimiter } from './rate-limit';
import { RedisRateLimiter } from '../../core/rate-limit';
import { redisKeys } from '../../core/redis-keys';
import { rateLimitPerAddress } from '../../core/http/rate-limit';
import { SessionOwners } from '../../core/session-owners';

/**
 * `vigil gateway`: serves the HTTP ingest gateway until SIGTERM/SIGINT. Listens at once; the Kafka
 * producer and the writer schemas are brought up in the background and retried, so a gateway started
 * before Kafka or the registry answers 503 (and /health/ready says which) until they are there.
 * Shutdown closes the listener first, then flushes the publisher, so accepted requests finish.
 */
export async function startGatewayServer(rt: Runtime): Promise<{ server: Server; url: string }> {
  const { config, log } = rt;
  const pool = rt.pool;
  const redis = rt.redis;
  const verifier = configureApiKeyCache(pool, { ttlMs: config.apiKeys.cacheTtlMs });
  const admin = rt.kafka.admin();
  // The publisher merges concurrent requests into one Kafka request and does not bound it in bytes;
  // past the broker's message.max.bytes (1 MiB by default) for one partition, Kafka refuses the whole
  // batch. Holding at most two requests' worth queued keeps a merged batch near one request's size.
  const publisher = new Publisher(rt.kafka, rt.serde, rt.topics, {
    batchMaxEvents: config.gateway.maxEvents,
    maxQueuedEvents: 2 * config.gateway.maxEvents,
    log,
  });
  let stopped = false;
  let producerUp = false;
  let schemasUp = false;
  rt.lifecycle.onClose('kafka admin', () => admin.disconnect());
  rt.lifecycle.onClose('publisher', async () => {
    stopped = true;
    await publisher.disconnect();
  });

  const retrying = async (what: string, fn: () => Promise<void>) => {
    for (let attempt = 1; !stopped; attempt++) {
      try {
        await fn();
        log.info({ attempt }, `${what}: ok`);
        return;
      } catch (err) {
        log.warn({ err: messageOf(err), attempt }, `${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(attempt * 1_000, 10_000)).unref());
      }
    }
  };
  void retrying('kafka producer connect', async () => {
    await publisher.connect();
    producerUp = true;
  });
  void retrying('kafka admin connect', () => admin.connect());
  void retrying('schema registration', async () => {
    await rt.serde.register(Object.values(streams));
    schemasUp = true;
  });

  const owners = new SessionOwners(pool);
  const app = createGatewayApp({
    publish: (key, events) => publisher.publish(key, events),
    validate: (key, value) => rt.serde.validate(key, value),
    verifyKey: (key) => verifier.verify(key),
    rateLimiter: new EventRateLimiter(redis, {
      eventsPerSec: config.gateway.ratePerSec,
      keyPrefix: redisKeys(config.topicPrefix).rate.gatewayKey,
      log,
    }),
    addressLimit: rateLimitPerAddress(
      new RedisRateLimiter(redis, {
        points: config.limits.gatewayAddressRatePerMin,
        windowS: 60,
        keyPrefix: redisKeys(config.topicPrefix).rate.gatewayAddress,
        log,
      }),
      config.limits.trustProxyHops,
    ),
    limits: { maxBodyBytes: config.gateway.maxBodyBytes, maxEvents: config.gateway.maxEvents },
    ready: () => schemasUp,
    claimSessions: (claims) => owners.claim(claims),
    tsWindow: config.tsWindow,
    log,
    checks: {
      kafka: {
        required: true,
        check: async () => {
          if (!producerUp) throw new Error('producer not connected yet');
          await admin.describeCluster();
        },
      },
      schema_registry: {
        required: true,
        check: async () => {
          if (!schemasUp) throw new Error('writer schemas not registered yet');
          const res = await fetch(`${config.schemaRegistryUrl}/subjects`, {
            headers: registryHeaders(config.schemaRegistryAuth),
          });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
        },
      },
      // The keys table, not just the server: a gateway without migrations cannot authenticate anyone.
      postgres: { required: true, check: () => pool.query('SELECT 1 FROM api_keys LIMIT 1') },
      // Optional: only the rate counters live there, and the limiter fails open (see rate-limit.ts).
      redis: { required: false, check: () => redis.ping() },
    },
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.gateway.port, config.gateway.host, () => resolve(s));
    s.once('error', reject);
  });
  rt.lifecycle.onClose('http server', () => new Promise((r) => server.close(r)));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.gateway.port;
  const url = `http://${config.gateway.host}:${port}`;
  log.info({ url }, 'gateway listening');
  return { server, url };
}
