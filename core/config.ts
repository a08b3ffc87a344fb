import { z } from 'zod';
import { VigilError } from './errors';

/**
 * The only module that reads the environment. `loadConfig` is called once by main; everything below
 * receives the typed `Config` (or the part of it it needs). A bad value stops start-up with a message
 * naming the variable and what it should look like.
 */

const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const url = (protocols: string[]) =>
  z
    .string()
    .url()
    .refine((v) => protocols.includes(new URL(v).protocol), { message: `must use ${protocols.join(' or ')}` });

/** Variable name → schema and default. Documented in README.md ("Configuration"). */
const variables = {
  VIGIL_KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .refine((v) => v.split(',').every((b) => /^[\w.-]+:\d{1,5}$/.test(b.trim())), {
      message: 'must be a comma-separated list of host:port',
    }),
  VIGIL_KAFKA_CLIENT_ID: z.string().min(1).default('vigil'),
  VIGIL_TOPIC_PREFIX: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/i, 'must be letters, digits, "_" or "-"')
    .default('vigil'),
  VIGIL_TOPIC_PARTITIONS: intIn(1, 1000).default(12),
  VIGIL_SCHEMA_REGISTRY_URL: url(['http:', 'https:']).default('http://127.0.0.1:8081/apis/ccompat/v7'),
  VIGIL_DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/vigil'),
  VIGIL_DATABASE_POOL_MAX: intIn(1, 200).default(10),
  VIGIL_REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379/0'),
  VIGIL_API_HOST: z.string().min(1).default('127.0.0.1'),
  VIGIL_API_PORT: intIn(0, 65535).default(8080),
  VIGIL_API_RATE_PER_MIN: intIn(1, 10_000_000).default(1200),
  VIGIL_API_MAX_BODY_BYTES: intIn(256, 16 * 1024 * 1024).default(64 * 1024),
  VIGIL_API_CORS_ORIGINS: z
    .string()
    .default('')
    .refine((v) => v === '*' || v.split(',').every((o) => !o.trim() || /^https?:\/\/[^/\s]+$/.test(o.trim())), {
      message: 'must be *, or a comma-separated list of origins like https://dash.example.com',
    }),
  VIGIL_API_CACHE_TTL_S: intIn(0, 86_400).default(60),
  VIGIL_READY_MAX_LAG: intIn(0, 1_000_000_000).default(10_000),
  VIGIL_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  VIGIL_GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  VIGIL_GATEWAY_PORT: intIn(0, 65535).default(8090),
  VIGIL_GATEWAY_MAX_BODY_BYTES: intIn(1024, 64 * 1024 * 1024).default(1024 * 1024),
  VIGIL_GATEWAY_MAX_EVENTS: intIn(1, 100_000).default(1000),
  VIGIL_GATEWAY_RATE_PER_SEC: intIn(1, 100_000_000).default(10_000),
  VIGIL_API_KEY_CACHE_TTL_MS: intIn(0, 3_600_000).default(30_000),
  // Trust boundary (issue 11): abuse limits and the retention of the source-of-truth topics.
  VIGIL_API_ADDRESS_RATE_PER_MIN: intIn(1, 100_000_000).default(6_000),
  VIGIL_GATEWAY_ADDRESS_RATE_PER_MIN: intIn(1, 100_000_000).default(60_000),
  VIGIL_TRUST_PROXY_HOPS: intIn(0, 10).default(0),
  VIGIL_API_STREAMS_PER_KEY: intIn(1, 100_000).default(10),
  VIGIL_API_STREAMS_MAX: intIn(1, 1_000_000).default(1_000),
  VIGIL_TOPIC_RETENTION_MS: z.coerce
    .number()
    .int()
    .refine((v) => v === -1 || (v >= 3_600_000 && v <= Number.MAX_SAFE_INTEGER), {
      message: 'must be -1 (keep forever) or at least 3600000 (one hour) in milliseconds',
    })
    .default(-1),
  // Accepted window of a device's ts around the receiving clock (broker append time, gateway clock).
  VIGIL_TS_MAX_AHEAD_MS: intIn(0, 3_600_000).default(60_000),
  VIGIL_TS_MAX_AGE_MS: intIn(60_000, 366 * 24 * 3_600_000).default(24 * 3_600_000),
  VIGIL_TRACING: z.enum(['on', 'off']).default('on'),
  // The board's sign-in cookie (api/ui-session.ts): HMAC secret shared by every API instance, lifetime.
  VIGIL_UI_SESSION_SECRET: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -hex 32)').optional(),
  VIGIL_UI_SESSION_TTL_S: intIn(60, 86_400).default(3_600),
  // Every long-running role serves GET /metrics here (docs/metrics.md); 0 = no metrics listener.
  VIGIL_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  VIGIL_METRICS_PORT: intIn(0, 65535).default(0),
  VIGIL_ZIPKIN_URL: url(['http:', 'https:']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: url(['http:', 'https:']).optional(),
} as const;

const hints: Partial<Record<keyof typeof variables, string>> = {
  VIGIL_KAFKA_BROKERS: 'e.g. 127.0.0.1:9092',
  VIGIL_SCHEMA_REGISTRY_URL: 'e.g. http://127.0.0.1:8081/apis/ccompat/v7',
  VIGIL_DATABASE_URL: 'e.g. postgres://postgres@127.0.0.1:5432/vigil',
  VIGIL_REDIS_URL: 'e.g. redis://127.0.0.1:6379/0',
  VIGIL_ZIPKIN_URL: 'e.g. http://127.0.0.1:9411/api/v2/spans',
};

const envSchema = z.object(variables);
type Env = z.infer<typeof envSchema>;

export interface Config {
  kafka: { brokers: string[]; clientId: string; partitions: number };
  topicPrefix: string;
  schemaRegistryUrl: string;
  database: { url: string; poolMax: number };
  redisUrl: string;
  /**
   * Query API: requests per minute per key (shared in Redis), JSON body limit, CORS origins (empty:
   * no cross-origin access; ['*']: any), TTL of cached report answers (0: no caching).
   */
  api: {
    host: string;
    port: number;
    ratePerMin: number;
    maxBodyBytes: number;
    corsOrigins: string[];
    cacheTtlS: number;
  };
  /** HTTP ingest gateway: limits per request, and events per second per API key (shared in Redis). */
  gateway: { host: string; port: number; maxBodyBytes: number; maxEvents: number; ratePerSec: number };
  /** How long a verified (or unknown) API key is remembered in process; also the revocation delay. */
  apiKeys: { cacheTtlMs: number };
  /**
   * The board's sign-in sessions: the HMAC secret of the session cookie (absent: a random one per
   * process, so a session works only against the instance that issued it) and their lifetime.
   */
  ui: { sessionSecret?: string; sessionTtlS: number };
  /**
   * Abuse limits: requests per client address per minute before authentication (API, gateway), how
   * many proxies in front set X-Forwarded-For (0: the socket's address is the client's), open SSE and
   * playback streams per key and per API process.
   */
  limits: {
    apiAddressRatePerMin: number;
    gatewayAddressRatePerMin: number;
    trustProxyHops: number;
    streamsPerKey: number;
    streamsMax: number;
  };
  /** `retention.ms` of the source-of-truth topics (`vigil topics ensure`); -1 keeps them forever. */
  topicRetentionMs: number;
  /**
   * Accepted window of event `ts` around a clock the device does not control: the broker's append
   * time of each record (processor) and the gateway's own clock (ingest). Outside: refused.
   */
  tsWindow: { maxAheadMs: number; maxAgeMs: number };
  /** `/health/ready` fails when the projections together are more than this many records behind. */
  health: { readyMaxLag: number };
  log: { level: Env['VIGIL_LOG_LEVEL'] };
  /**
   * metricsHost:metricsPort: where every long-running role serves GET /metrics as Prometheus text
   * (port 0 = off; docs/metrics.md); OTLP metrics go to otlpEndpoint.
   */
  telemetry: { enabled: boolean; zipkinUrl?: string; otlpEndpoint?: string; metricsHost: string; metricsPort: number };
}

const configVariables = Object.keys(variables) as (keyof typeof variables)[];

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings count as unset, so `VAR= vigil api` falls back to the default.
  const raw = Object.fromEntries(configVariables.map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const name = String(i.path[0]) as keyof typeof variables;
      const hint = hints[name] ? ` (${hints[name]})` : '';
      return `${name}=${JSON.stringify(raw[name])}: ${i.message}${hint}`;
    });
    throw new VigilError('CONFIG_INVALID', `Invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { variables: parsed.error.issues.map((i) => String(i.path[0])) },
    });
  }
  const e = parsed.data;
  if (e.VIGIL_GATEWAY_RATE_PER_SEC < e.VIGIL_GATEWAY_MAX_EVENTS) {
    // The gateway rate-limits in events: a full request must fit in one second's allowance.
    throw new VigilError(
      'CONFIG_INVALID',
      `Invalid configuration:\n  VIGIL_GATEWAY_RATE_PER_SEC=${e.VIGIL_GATEWAY_RATE_PER_SEC} is below VIGIL_GATEWAY_MAX_EVENTS=${e.VIGIL_GATEWAY_MAX_EVENTS}: a full request could never pass; raise the rate or lower the batch limit`,
      { details: { variables: ['VIGIL_GATEWAY_RATE_PER_SEC', 'VIGIL_GATEWAY_MAX_EVENTS'] } },
    );
  }
  return {
    kafka: {
      brokers: e.VIGIL_KAFKA_BROKERS.split(',').map((b) => b.trim()),
      clientId: e.VIGIL_KAFKA_CLIENT_ID,
      partitions: e.VIGIL_TOPIC_PARTITIONS,
    },
    topicPrefix: e.VIGIL_TOPIC_PREFIX,
    schemaRegistryUrl: e.VIGIL_SCHEMA_REGISTRY_URL,
    database: { url: e.VIGIL_DATABASE_URL, poolMax: e.VIGIL_DATABASE_POOL_MAX },
    redisUrl: e.VIGIL_REDIS_URL,
    api: {
      host: e.VIGIL_API_HOST,
      port: e.VIGIL_API_PORT,
      ratePerMin: e.VIGIL_API_RATE_PER_MIN,
      maxBodyBytes: e.VIGIL_API_MAX_BODY_BYTES,
      corsOrigins: e.VIGIL_API_CORS_ORIGINS.split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      cacheTtlS: e.VIGIL_API_CACHE_TTL_S,
    },
    gateway: {
      host: e.VIGIL_GATEWAY_HOST,
      port: e.VIGIL_GATEWAY_PORT,
      maxBodyBytes: e.VIGIL_GATEWAY_MAX_BODY_BYTES,
      maxEvents: e.VIGIL_GATEWAY_MAX_EVENTS,
      ratePerSec: e.VIGIL_GATEWAY_RATE_PER_SEC,
    },
    apiKeys: { cacheTtlMs: e.VIGIL_API_KEY_CACHE_TTL_MS },
    ui: { sessionSecret: e.VIGIL_UI_SESSION_SECRET, sessionTtlS: e.VIGIL_UI_SESSION_TTL_S },
    limits: {
      apiAddressRatePerMin: e.VIGIL_API_ADDRESS_RATE_PER_MIN,
      gatewayAddressRatePerMin: e.VIGIL_GATEWAY_ADDRESS_RATE_PER_MIN,
      trustProxyHops: e.VIGIL_TRUST_PROXY_HOPS,
      streamsPerKey: e.VIGIL_API_STREAMS_PER_KEY,
      streamsMax: e.VIGIL_API_STREAMS_MAX,
    },
    topicRetentionMs: e.VIGIL_TOPIC_RETENTION_MS,
    tsWindow: { maxAheadMs: e.VIGIL_TS_MAX_AHEAD_MS, maxAgeMs: e.VIGIL_TS_MAX_AGE_MS },
    health: { readyMaxLag: e.VIGIL_READY_MAX_LAG },
    log: { level: e.VIGIL_LOG_LEVEL },
    telemetry: {
      enabled: e.VIGIL_TRACING === 'on',
      zipkinUrl: e.VIGIL_ZIPKIN_URL,
      otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
      metricsHost: e.VIGIL_METRICS_HOST,
      metricsPort: e.VIGIL_METRICS_PORT,
    },
  };
}
