import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Pool } from 'pg';
import { createApp, type ApiDeps } from '../../api/app';
import { FeedHub } from '../../api/feed-hub';
import { ApiKeyVerifier, createApiKey, type Role } from '../../core/api-keys';
import type { Config } from '../../core/config';
import { createRedis, type Redis } from '../../core/redis';
import { topicNames } from '../../schemas/catalogue';
import { testConfig, testLogger } from './env';
import { migratedDatabase } from './database';

/**
 * The query API in process for int specs: a fresh migrated database, real Redis (keys under the
 * config's unique prefix), `app.listen(0)`. `start(over)` starts another app on the same database with
 * some deps replaced (e.g. Redis at a closed port).
 */
export interface ApiFixture {
  config: Config;
  /** Connection URL of the fixture's own database (for a jobs worker or pg-boss on it). */
  databaseUrl: string;
  pool: Pool;
  redis: Redis;
  url: string;
  /** A new key; an operator key belongs to no tenant (`tenantId` is ignored for it). */
  key(tenantId: string, role: Role): Promise<string>;
  start(over?: Partial<ApiDeps>): Promise<string>;
  get(path: string, key?: string, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

export async function apiFixture(env: Record<string, string> = {}): Promise<ApiFixture> {
  const config = testConfig(env);
  const log = testLogger();
  const db = await migratedDatabase({ poolMax: 6 });
  const pool = db.pool;
  const redis = createRedis(config.redisUrl);
  redis.on('error', () => {});
  const verifier = new ApiKeyVerifier(pool, { ttlMs: 0 });
  const servers: Server[] = [];
  /** The feed hubs this fixture made (one per app: its reader connection is closed with the fixture). */
  const hubs: FeedHub[] = [];
  const start = async (over: Partial<ApiDeps> = {}) => {
    let hub = over.live?.hub;
    if (!hub) hubs.push((hub = new FeedHub(over.redis ?? redis, log)));
    const app = createApp({
      config,
      pool,
      redis,
      log,
      topics: topicNames(config.topicPrefix),
      verifier,
      checks: { postgres: () => pool.query('SELECT 1') },
      ...over,
      live: { ...over.live, hub },
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const url = await start();
  return {
    config,
    databaseUrl: db.url,
    pool,
    redis,
    url,
    start,
    key: async (tenantId, role) => (await createApiKey(pool, role === 'operator' ? { role } : { tenantId, role })).key,
    get: (path, key, headers = {}) =>
      fetch(`${url}${path}`, { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } }),
    close: async () => {
      await Promise.all(
        servers.map((s) => {
          s.closeAllConnections();
          return new Promise((r) => s.close(r));
        }),
      );
      for (const hub of hubs) await hub.close().catch(() => {});
      const keys = await redis.keys(`${config.topicPrefix}:*`).catch(() => [] as string[]);
      if (keys.length) await redis.del(...keys).catch(() => {});
      await redis.quit().catch(() => {});
      await db.close();
    },
  };
}
