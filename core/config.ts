import * as fs from 'node:fs';
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
  // Cluster-sized replication (issue 17): 0 = from the cluster (3 copies, 2 in sync, once it has 3 brokers).
  VIGIL_TOPIC_REPLICATION_FACTOR: intIn(0, 32).default(0),
  VIGIL_TOPIC_MIN_INSYNC_REPLICAS: intIn(0, 32).default(0),
  // Client security (issue 17), the same for every role; each role's deployment gets its own user.
  VIGIL_KAFKA_SSL: z.enum(['on', 'off']).default('off'),
  VIGIL_KAFKA_SSL_CA_FILE: z.string().min(1).optional(),
  VIGIL_KAFKA_SSL_INSECURE: z.enum(['on', 'off']).default('off'),
  VIGIL_KAFKA_SASL_MECHANISM: z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none'),
  VIGIL_KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  VIGIL_KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  VIGIL_SCHEMA_REGISTRY_URL: url(['http:', 'https:']).default('http://127.0.0.1:8081/apis/ccompat/v7'),
  VIGIL_SCHEMA_REGISTRY_USERNAME: z.string().min(1).optional(),
  VIGIL_SCHEMA_REGISTRY_PASSWORD: z.string().min(1).optional(),
  VIGIL_DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5433/vigil'),
  VIGIL_DATABASE_POOL_MAX: intIn(1, 200).default(10),
  VIGIL_TIMESCALEDB: z.enum(['auto', 'required']).default('auto'),
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
  VIGIL_API_DETAIL_CACHE_MS: intIn(0, 10_000).default(100),
  VIGIL_READY_MAX_LAG: intIn(0, 1_000_000_000).default(10_000),
  // Projection worker fetches: the broker answers once this many bytes are there or the wait is over
  // (throughput for latency: fewer, larger batches and transactions, at most the wait added).
  VIGIL_PROJECTION_FETCH_MIN_BYTES: intIn(1, 64 * 1024 * 1024).default(65_536),
  VIGIL_PROJECTION_FETCH_MAX_WAIT_MS: intIn(1, 30_000).default(250),
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
  // Processor commit cadence (processors/runner.ts): outputs wait at most COMMIT_MS for their
  // transaction, and held records' caught-up flags are re-checked as often; changed state without
  // outputs at most CHECKPOINT_MS.
  VIGIL_PROCESSOR_COMMIT_MS: intIn(10, 10_000).default(100),
  VIGIL_PROCESSOR_CHECKPOINT_MS: intIn(100, 60_000).default(2_000),
  // Share of new traces recorded (parent-based: a request or record carrying a sampled or unsampled
  // traceparent keeps that decision); unsampled traces still propagate their trace id.
  VIGIL_TRACE_SAMPLE_RATIO: z.coerce.number().min(0).max(1).default(1),
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
  VIGIL_DATABASE_URL: 'e.g. postgres://postgres@127.0.0.1:5433/vigil',
  VIGIL_REDIS_URL: 'e.g. redis://127.0.0.1:6379/0',
  VIGIL_ZIPKIN_URL: 'e.g. http://127.0.0.1:9411/api/v2/spans',
};

const envSchema = z.object(variables);
type Env = z.infer<typeof envSchema>;

/** TLS of the Kafka clients: `ca` is the PEM text of VIGIL_KAFKA_SSL_CA_FILE (absent: the system CAs). */
export interface KafkaTls {
  ca?: string;
  rejectUnauthorized: boolean;
}
export interface KafkaSasl {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export interface Config {
  /**
   * replicationFactor/minInsyncReplicas: 0 = from the cluster's size when topics are created
   * (core/kafka.ts `ensureTopics`); ssl/sasl: absent = plaintext, unauthenticated.
   */
  kafka: {
    brokers: string[];
    clientId: string;
    partitions: number;
    replicationFactor: number;
    minInsyncReplicas: number;
    ssl?: KafkaTls;
    sasl?: KafkaSasl;
  };
  topicPrefix: string;
  schemaRegistryUrl: string;
  /** HTTP basic auth of the schema registry (absent: none). */
  schemaRegistryAuth?: { username: string; password: string };
  database: { url: string; poolMax: number };
  /**
   * What `vigil migrate` does when the server cannot create TimescaleDB (not installed, or not in
   * shared_preload_libraries): 'auto' takes plain tables with a warning; 'required' fails.
   */
  timescaledb: 'auto' | 'required';
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
    /** How long a session detail answer is reused in process (0: every read goes to PostgreSQL and Redis). */
    detailCacheMs: number;
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
  /** The processor's commit cadence: outputs wait at most commitEveryMs, state-only changes checkpointEveryMs. */
  processor: { commitEveryMs: number; checkpointEveryMs: number };
  /**
   * Fetch settings of the projection worker's PostgreSQL consumer group: a fetch is answered once
   * `minBytes` are ready or after `maxWaitTimeInMs` (the most a record waits for company before it is
   * applied). The Redis group (live reads, little volume) takes the wait only: it fetches from 1 byte.
   */
  projectionFetch: { minBytes: number; maxWaitTimeInMs: number };
  log: { level: Env['VIGIL_LOG_LEVEL'] };
  /**
   * metricsHost:metricsPort: where every long-running role serves GET /metrics as Prometheus text
   * (port 0 = off; docs/metrics.md); OTLP metrics go to otlpEndpoint.
   */
  telemetry: {
    enabled: boolean;
    sampleRatio: number;
    zipkinUrl?: string;
    otlpEndpoint?: string;
    metricsHost: string;
    metricsPort: number;
  };
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
  const security = kafkaSecurity(e);
  return {
    kafka: {
      brokers: e.VIGIL_KAFKA_BROKERS.split(',').map((b) => b.trim()),
      clientId: e.VIGIL_KAFKA_CLIENT_ID,
      partitions: e.VIGIL_TOPIC_PARTITIONS,
      replicationFactor: e.VIGIL_TOPIC_REPLICATION_FACTOR,
      minInsyncReplicas: e.VIGIL_TOPIC_MIN_INSYNC_REPLICAS,
      ...security,
    },
    topicPrefix: e.VIGIL_TOPIC_PREFIX,
    schemaRegistryUrl: e.VIGIL_SCHEMA_REGISTRY_URL,
    ...registryAuth(e),
    database: { url: e.VIGIL_DATABASE_URL, poolMax: e.VIGIL_DATABASE_POOL_MAX },
    timescaledb: e.VIGIL_TIMESCALEDB,
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
      detailCacheMs: e.VIGIL_API_DETAIL_CACHE_MS,
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
    processor: { commitEveryMs: e.VIGIL_PROCESSOR_COMMIT_MS, checkpointEveryMs: e.VIGIL_PROCESSOR_CHECKPOINT_MS },
    projectionFetch: {
      minBytes: e.VIGIL_PROJECTION_FETCH_MIN_BYTES,
      maxWaitTimeInMs: e.VIGIL_PROJECTION_FETCH_MAX_WAIT_MS,
    },
    log: { level: e.VIGIL_LOG_LEVEL },
    telemetry: {
      enabled: e.VIGIL_TRACING === 'on',
      sampleRatio: e.VIGIL_TRACE_SAMPLE_RATIO,
      zipkinUrl: e.VIGIL_ZIPKIN_URL,
      otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
      metricsHost: e.VIGIL_METRICS_HOST,
      metricsPort: e.VIGIL_METRICS_PORT,
    },
  };
}

const invalid = (variables: string[], message: string) =>
  new VigilError('CONFIG_INVALID', `Invalid configuration:\n  ${message}`, { details: { variables } });

/**
 * TLS and SASL of the Kafka clients, checked as a whole: SASL needs a user and a password, a password
 * never goes over plaintext with PLAIN, and the CA file must be readable PEM (read here, once).
 */
function kafkaSecurity(e: Env): { ssl?: KafkaTls; sasl?: KafkaSasl } {
  const ssl = e.VIGIL_KAFKA_SSL === 'on';
  if (!ssl && (e.VIGIL_KAFKA_SSL_CA_FILE || e.VIGIL_KAFKA_SSL_INSECURE === 'on')) {
    throw invalid(
      ['VIGIL_KAFKA_SSL', 'VIGIL_KAFKA_SSL_CA_FILE'],
      'VIGIL_KAFKA_SSL_CA_FILE / VIGIL_KAFKA_SSL_INSECURE are set but VIGIL_KAFKA_SSL is off: set VIGIL_KAFKA_SSL=on',
    );
  }
  let tls: KafkaTls | undefined;
  if (ssl) {
    tls = { rejectUnauthorized: e.VIGIL_KAFKA_SSL_INSECURE !== 'on' };
    const file = e.VIGIL_KAFKA_SSL_CA_FILE;
    if (file) {
      let ca: string;
      try {
        ca = fs.readFileSync(file, 'utf8');
      } catch (cause) {
        throw invalid(
          ['VIGIL_KAFKA_SSL_CA_FILE'],
          `VIGIL_KAFKA_SSL_CA_FILE=${JSON.stringify(file)}: cannot be read (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`,
        );
      }
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
        throw invalid(
          ['VIGIL_KAFKA_SSL_CA_FILE'],
          `VIGIL_KAFKA_SSL_CA_FILE=${JSON.stringify(file)}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
        );
      }
      tls.ca = ca;
    }
  }
  const mechanism = e.VIGIL_KAFKA_SASL_MECHANISM;
  const { VIGIL_KAFKA_SASL_USERNAME: username, VIGIL_KAFKA_SASL_PASSWORD: password } = e;
  if (mechanism === 'none') {
    if (username || password) {
      throw invalid(
        ['VIGIL_KAFKA_SASL_MECHANISM'],
        'VIGIL_KAFKA_SASL_USERNAME / VIGIL_KAFKA_SASL_PASSWORD are set but VIGIL_KAFKA_SASL_MECHANISM is none: set it to scram-sha-512 (or scram-sha-256, plain)',
      );
    }
    return { ssl: tls };
  }
  const missing = [
    ...(username ? [] : ['VIGIL_KAFKA_SASL_USERNAME']),
    ...(password ? [] : ['VIGIL_KAFKA_SASL_PASSWORD']),
  ];
  if (missing.length) {
    throw invalid(missing, `VIGIL_KAFKA_SASL_MECHANISM=${mechanism} needs ${missing.join(' and ')}`);
  }
  if (mechanism === 'plain' && !ssl) {
    throw invalid(
      ['VIGIL_KAFKA_SASL_MECHANISM', 'VIGIL_KAFKA_SSL'],
      'VIGIL_KAFKA_SASL_MECHANISM=plain without VIGIL_KAFKA_SSL=on would send the password in clear: turn TLS on or use scram-sha-512',
    );
  }
  return { ssl: tls, sasl: { mechanism, username: username!, password: password! } };
}

/** Registry basic auth: both or neither. */
function registryAuth(e: Env): { schemaRegistryAuth?: { username: string; password: string } } {
  const { VIGIL_SCHEMA_REGISTRY_USERNAME: username, VIGIL_SCHEMA_REGISTRY_PASSWORD: password } = e;
  if (!username && !password) return {};
  if (!username || !password) {
    const missing = username ? 'VIGIL_SCHEMA_REGISTRY_PASSWORD' : 'VIGIL_SCHEMA_REGISTRY_USERNAME';
    throw invalid(
      [missing],
      `registry basic auth needs both VIGIL_SCHEMA_REGISTRY_USERNAME and VIGIL_SCHEMA_REGISTRY_PASSWORD; ${missing} is missing`,
    );
  }
  return { schemaRegistryAuth: { username, password } };
}
