import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { ApiKeyVerifier } from '../../core/api-keys';
import type { Config } from '../../core/config';
import { createRedis, type Redis } from '../../core/redis';
import { SessionOwners } from '../../core/session-owners';
import { createGatewayApp, type GatewayDeps } from '../../producers/gateway/app';
import { EventRateLimiter } from '../../producers/gateway/rate-limit';
import { testLogger } from './env';
import { setUp } from './fixture';
import { pipelineFixture, type PipelineFixture } from './pipeline';

/**
 * The ingest gateway in process for int specs: the pipeline fixture (Kafka and registry under the
 * config's prefix, a fresh migrated database for keys and session owners, a Publisher) and real Redis
 * for the rate counters. `start(over)` starts a gateway on a random port of 127.0.0.1 wired as
 * `vigil gateway` wires it, with some deps replaced, and returns its base URL. `close()` closes the
 * gateways, deletes the Redis keys under the config's prefix, quits Redis and closes the pipeline.
 */
export interface GatewayFixture extends PipelineFixture {
  redis: Redis;
  start(over?: Partial<GatewayDeps>): Promise<string>;
}

export interface GatewayFixtureOptions {
  /** How long the key verifier caches a key (default the config's `apiKeys.cacheTtlMs`). */
  keyCacheTtlMs?: number;
}

export function gatewayFixture(config: Config, options: GatewayFixtureOptions = {}): Promise<GatewayFixture> {
  return setUp(async (onClose) => {
    const pipeline = await pipelineFixture(config);
    onClose(() => pipeline.close());
    const redis = createRedis(config.redisUrl);
    redis.on('error', () => {});
    onClose(async () => {
      const keys = await redis.keys(`${config.topicPrefix}:*`).catch(() => [] as string[]);
      if (keys.length) await redis.del(...keys).catch(() => {});
      await redis.quit().catch(() => {});
    });
    const servers: Server[] = [];
    onClose(() =>
      Promise.all(
        servers.map((s) => {
          s.closeAllConnections();
          return new Promise((r) => s.close(r));
        }),
      ),
    );
    const log = testLogger();
    const { pool, publisher, serde } = pipeline;
    const verifier = new ApiKeyVerifier(pool, { ttlMs: options.keyCacheTtlMs ?? config.apiKeys.cacheTtlMs });
    const start = async (over: Partial<GatewayDeps> = {}) => {
      const owners = new SessionOwners(pool);
      const app = createGatewayApp({
        publish: (key, events) => publisher.publish(key, events),
        validate: (key, value) => serde.validate(key, value),
        verifyKey: (key) => verifier.verify(key),
        rateLimiter: new EventRateLimiter(redis, {
          eventsPerSec: config.gateway.ratePerSec,
          keyPrefix: `${config.topicPrefix}:gateway:rate`,
          log,
        }),
        limits: { maxBodyBytes: config.gateway.maxBodyBytes, maxEvents: config.gateway.maxEvents },
        claimSessions: (claims) => owners.claim(claims),
        checks: {
          postgres: { required: true, check: () => pool.query('SELECT 1') },
          redis: { required: false, check: () => redis.ping() },
        },
        log,
        ...over,
      });
      const server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    // `close` of the result is the fixture's own (it replaces the spread pipeline.close).
    return { ...pipeline, redis, start };
  });
}
