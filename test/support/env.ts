import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { loadConfig, type Config } from '../../core/config';
import { createLogger } from '../../core/logger';

/**
 * Test configuration: the same loader as production, pointed at the local stack (`npm run stack:up`),
 * with a unique topic prefix per call so tests never share topics, subjects or consumer groups.
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  // Spec topics are throw-away: kept 24 h, not forever (VIGIL_TOPIC_RETENTION_MS defaults to -1).
  return loadConfig({
    ...process.env,
    VIGIL_TOPIC_PREFIX: uniqueName('t'),
    VIGIL_TOPIC_PARTITIONS: '3',
    VIGIL_TOPIC_RETENTION_MS: String(24 * 3_600_000),
    ...overrides,
  });
}

/**
 * The environment of a `vigil` process a spec starts (test/support/processes.ts), on the config's
 * topics: its prefix, partition count and retention; no tracing, warnings and errors only.
 * `overrides` add to it or win (`VIGIL_DATABASE_URL`, ports, `VIGIL_TRACING: 'on'`, ...).
 */
export function processEnv(config: Config, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    VIGIL_TOPIC_PREFIX: config.topicPrefix,
    VIGIL_TOPIC_PARTITIONS: String(config.kafka.partitions),
    VIGIL_TOPIC_RETENTION_MS: String(config.topicRetentionMs),
    VIGIL_TRACING: 'off',
    VIGIL_LOG_LEVEL: 'warn',
    ...overrides,
  };
}

/** A TCP port free on 127.0.0.1 a moment ago, for a process the spec starts. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

export const uniqueName = (prefix: string): string =>
  `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

export const testLogger = () => createLogger({ level: process.env.VIGIL_TEST_LOG_LEVEL ?? 'silent', role: 'test' });

/** Polls `fn` until `until(value)` holds or `timeoutMs` passes; returns the last value either way. */
export async function eventually<T>(fn: () => Promise<T>, until: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await fn();
  while (!until(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    last = await fn();
  }
  return last;
}
