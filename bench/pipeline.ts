import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Client } from 'pg';
import { loadConfig, type Config } from '../core/config';
import { createLogger } from '../core/logger';
import { createKafka, ensureTopics, type Admin, type Kafka } from '../core/kafka';
import { migrate } from '../core/migrate';
import { repoRoot } from '../core/paths';
import { AvroSerde } from '../core/serde';
import { topicKeys, topicNames, type TopicNames } from '../schemas/catalogue';
import { topicPlan } from '../schemas/topics';
import { POSTGRES_GROUP } from '../projections/runner';
import { REDIS_PROJECTION } from '../projections/redis/runner';

/**
 * A whole pipeline for one benchmark step or drill: its own topics (unique prefix), a fresh database
 * on the PostgreSQL server given, every schema registered, and the roles (`vigil process`, `project`,
 * `api`, `gateway`, `simulate`) as separate `dist/main.js` processes that can be killed and restarted.
 * Run `npm run build` first.
 */
export interface PipelineOptions {
  name: string;
  partitions?: number;
  /** Any database URL on the server to use; a fresh database is created next to it. */
  databaseServerUrl?: string;
  redisUrl?: string;
  brokers?: string;
  logLevel?: string;
}

export interface Role {
  name: string;
  args: string[];
  child: ChildProcess;
  pid: number;
  /** The last 64 KiB of its stdout and stderr. */
  output: () => string;
  exited: Promise<number>;
  /** Set when the role was killed on purpose (not a crash). */
  killed: boolean;
}

export const MAIN = () => path.join(repoRoot(), 'dist', 'main.js');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Keeps the last 64 KiB of a child's stdout and stderr, and its exit code (128 when a signal ended it,
 * 1 when neither is known).
 */
export function watchChild(child: ChildProcess): { output: () => string; exited: Promise<number> } {
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-64 * 1024);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : 1))));
  return { output: () => out, exited };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The benches' PostgreSQL server (TimescaleDB): VIGIL_DATABASE_URL, else the local stack's. */
export const benchDatabaseServer = (): string =>
  process.env.VIGIL_DATABASE_URL || 'postgres://postgres@127.0.0.1:5433/vigil';

/** A fresh database (see freshDatabase) with Vigil's migrations applied. */
export async function migratedDatabase(
  name: string,
  serverUrl = benchDatabaseServer(),
): Promise<{ url: string; drop: () => Promise<void> }> {
  const db = await freshDatabase(serverUrl, name);
  await migrate({ database: db.url, log: createLogger({ level: 'silent', role: 'bench' }) });
  return db;
}

/** A fresh database on the server `serverUrl` points at; `drop()` removes it. */
export async function freshDatabase(
  serverUrl: string,
  name: string,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const dbName = `vigil_${name.replace(/[^a-z0-9_]/gi, '_')}_${Date.now().toString(36)}`.toLowerCase();
  const adminUrl = new URL(serverUrl);
  adminUrl.pathname = '/postgres';
  const adminQuery = async (sql: string) => {
    const c = new Client({ connectionString: adminUrl.toString() });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await adminQuery(`CREATE DATABASE ${dbName}`);
  const url = new URL(serverUrl);
  url.pathname = `/${dbName}`;
  return { url: url.toString(), drop: () => adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`) };
}

export class Pipeline {
  readonly roles = new Map<string, Role>();

  /** Each role's last 64 KiB of output, for whoever investigates a run: `.local/<dir>/<role>.log`. */
  keepOutputs(dir: string): void {
    const to = path.join(repoRoot(), '.local', dir);
    mkdirSync(to, { recursive: true });
    for (const [name, r] of this.roles) writeFileSync(path.join(to, `${name}.log`), r.output());
  }
  /** Every role that exited without being killed on purpose: name and exit code. */
  readonly crashes: { role: string; code: number; tail: string }[] = [];
  private readonly launch = new Map<
    string,
    { extraEnv: Record<string, string>; o: { script?: string; nodeArgs?: string[] } }
  >();
  apiUrl = '';
  gatewayUrl = '';

  private constructor(
    readonly config: Config,
    readonly env: Record<string, string>,
    readonly kafka: Kafka,
    readonly admin: Admin,
    readonly serde: AvroSerde,
    readonly topics: TopicNames,
    readonly db: { url: string; drop: () => Promise<void> },
  ) {}

  static async create(o: PipelineOptions): Promise<Pipeline> {
    const base: Record<string, string | undefined> = { ...process.env };
    const prefix = `${o.name}-${Date.now().toString(36)}`;
    const db = await migratedDatabase(o.name, o.databaseServerUrl);
    const env: Record<string, string> = {
      VIGIL_TOPIC_PREFIX: prefix,
      VIGIL_TOPIC_PARTITIONS: String(o.partitions ?? 12),
      VIGIL_DATABASE_URL: db.url,
      VIGIL_TRACING: 'off',
      VIGIL_LOG_LEVEL: o.logLevel ?? 'warn',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
    };
    if (o.redisUrl) env.VIGIL_REDIS_URL = o.redisUrl;
    if (o.brokers) env.VIGIL_KAFKA_BROKERS = o.brokers;
    const config = loadConfig({ ...base, ...env });
    const kafka = createKafka(config.kafka, createLogger({ level: 'error', role: `bench-${o.name}` }), 'bench');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, topicPlan(config));
    const topics = topicNames(config.topicPrefix);
    const serde = new AvroSerde(config.schemaRegistryUrl, topics);
    await serde.register(topicKeys);
    return new Pipeline(config, env, kafka, admin, serde, topics, db);
  }

  /** Consumer groups of the processor and of every projection `vigil project` runs. */
  groups(): { processor: string; projections: string[] } {
    const p = this.config.topicPrefix;
    return {
      processor: `${p}.processor.fatigue`,
      projections: [POSTGRES_GROUP, REDIS_PROJECTION].map((m) => `${p}.projection.${m}`),
    };
  }

  /**
   * Starts `vigil <args>` as role `name` (replacing a dead one of the same name); `o.script` runs
   * another built script instead of dist/main.js, `o.nodeArgs` go to node (e.g. --cpu-prof).
   */
  start(
    name: string,
    args: string[],
    extraEnv: Record<string, string> = {},
    o: { script?: string; nodeArgs?: string[] } = {},
  ): Role {
    const env: Record<string, string | undefined> = { ...process.env, ...this.env, ...extraEnv };
    // No span export unless the role is given an exporter explicitly (the API bench's tracing-on API).
    for (const k of ['VIGIL_ZIPKIN_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT']) if (!(k in extraEnv)) delete env[k];
    const child = spawn(process.execPath, [...(o.nodeArgs ?? []), o.script ?? MAIN(), ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const { output, exited } = watchChild(child);
    const role: Role = { name, args, child, pid: child.pid!, output, killed: false, exited };
    void role.exited.then((code) => {
      if (!role.killed && !['simulate', 'load'].some((s) => name.startsWith(s)))
        this.crashes.push({ role: name, code, tail: output().slice(-2000) });
    });
    this.roles.set(name, role);
    this.launch.set(name, { extraEnv, o });
    return role;
  }

  async startApi(): Promise<void> {
    const port = await freePort();
    this.apiUrl = `http://127.0.0.1:${port}`;
    // The harness polls many sessions every 100 ms with one key from one address: far above the
    // default per-key (1,200/min) and per-address (6,000/min) limits, whose 429s would leave the
    // freshness samples few and stale (until 2026-12-07 the per-address one refused ~40% of the e2e
    // bench's reads: a throttled session's score was seen seconds late).
    this.start('api', ['api'], {
      VIGIL_API_PORT: String(port),
      VIGIL_API_RATE_PER_MIN: '10000000',
      VIGIL_API_ADDRESS_RATE_PER_MIN: '100000000',
    });
    await this.waitHttp(`${this.apiUrl}/health/live`, 'api');
  }

  async startGateway(extraEnv: Record<string, string> = {}): Promise<void> {
    const port = await freePort();
    this.gatewayUrl = `http://127.0.0.1:${port}`;
    this.start('gateway', ['gateway'], { VIGIL_GATEWAY_PORT: String(port), ...extraEnv });
    await this.waitHttp(`${this.gatewayUrl}/health/live`, 'gateway');
  }

  async waitHttp(url: string, role: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.roles.get(role);
      if (r && r.child.exitCode !== null) throw new Error(`${role} exited ${r.child.exitCode}:\n${r.output()}`);
      const ok = await fetch(url).then(
        (x) => x.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`${role} not answering ${url} after ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** Waits until every consumer group named has at least one member and is Stable. */
  async waitGroups(groupIds: string[], timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { groups } = await this.admin.describeGroups(groupIds).catch(() => ({ groups: [] }));
      const ready = groupIds.every((g) =>
        groups.some((d) => d.groupId === g && d.state === 'Stable' && d.members.length),
      );
      if (ready) return;
      if (Date.now() > deadline) {
        const states = groups.map((d) => `${d.groupId}=${d.state}/${d.members.length}`).join(', ');
        throw new Error(`consumer groups not stable after ${timeoutMs} ms: ${states}`);
      }
      await sleep(500);
    }
  }

  /** The processor and the projection worker, waiting until their groups are stable. */
  async startWorkers(nodeArgs: string[] = []): Promise<void> {
    this.start('processor', ['process'], {}, { nodeArgs });
    this.start('projector', ['project'], {}, { nodeArgs });
    const g = this.groups();
    await this.waitGroups([g.processor, ...g.projections]);
  }

  /** kill -9 (or another signal) of a role; resolves once it has exited. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const r = this.roles.get(name);
    if (!r || r.child.exitCode !== null || r.child.signalCode !== null) return;
    r.killed = true;
    r.child.kill(signal);
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 20_000);
    await r.exited;
    clearTimeout(timer);
  }

  /** Starts a role again as it was started before (same arguments, environment and node options). */
  restart(name: string): Role {
    const r = this.roles.get(name);
    const l = this.launch.get(name);
    if (!r || !l) throw new Error(`no role ${name}`);
    return this.start(name, r.args, l.extraEnv, l.o);
  }

  pids(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [name, r] of this.roles)
      if (r.child.exitCode === null && r.child.signalCode === null) out[name] = [r.pid];
    return out;
  }

  /**
   * Stops every role (SIGTERM, SIGKILL after 20 s), drops the database unless kept, deletes every
   * topic under this pipeline's prefix when asked (changelogs and dead letters included: a bench that
   * runs step after step must not leave the broker with more partitions, and more work, each step),
   * and disconnects the admin client.
   */
  async close(o: { keepDatabase?: boolean; deleteTopics?: boolean } = {}): Promise<void> {
    await Promise.all([...this.roles.keys()].map((n) => this.kill(n, 'SIGTERM')));
    if (o.deleteTopics) {
      const prefix = `${this.config.topicPrefix}.`;
      const mine = (await this.admin.listTopics().catch(() => [])).filter((t) => t.startsWith(prefix));
      if (mine.length) await this.admin.deleteTopics({ topics: mine, timeout: 30_000 }).catch(() => {});
    }
    await this.admin.disconnect().catch(() => {});
    if (!o.keepDatabase) await this.db.drop().catch(() => {});
  }
}
