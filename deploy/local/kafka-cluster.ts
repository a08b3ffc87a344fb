import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { repoRoot } from '../../core/paths';

/**
 * A private Kafka cluster from deploy/local/kafka-cluster.sh for specs and drills (N KRaft nodes,
 * plaintext or SASL_SSL), on free ports under `.local/<dir>`: the shared broker on 9092 is never
 * touched. `dir` is kept between runs (formatted storage, certificates and SCRAM users are reused,
 * so a second start takes seconds, not a minute); `remove()` wipes it.
 */
export interface ClusterOptions {
  nodes: number;
  security: 'plaintext' | 'sasl_ssl';
  /** Folder under <repo>/.local (created if missing). */
  dir: string;
  heap?: string;
  /** Wipe the folder first (no storage, topics or users of an earlier run). */
  fresh?: boolean;
}

export class PrivateKafkaCluster {
  private constructor(
    readonly o: ClusterOptions,
    readonly basePort: number,
    readonly root: string,
  ) {}

  static async start(o: ClusterOptions): Promise<PrivateKafkaCluster> {
    const root = path.join(repoRoot(), '.local', o.dir);
    fs.mkdirSync(root, { recursive: true });
    const c = new PrivateKafkaCluster(o, await freePortRun(2 * o.nodes), root);
    // Nodes left running in this folder by a run that died (found by pid, whatever their ports).
    c.stop();
    if (o.fresh) {
      fs.rmSync(root, { recursive: true, force: true });
      fs.mkdirSync(root, { recursive: true });
    }
    c.script('up');
    return c;
  }

  /** Runs `kafka-cluster.sh <args>` with this cluster's settings; throws with its output on failure. */
  script(...args: string[]): string {
    // `env NAME=value ... bash script`: the child inherits this process's environment plus these.
    const settings = {
      VIGIL_STACK_LOCAL: this.root,
      VIGIL_KAFKA_PORT: String(this.basePort),
      VIGIL_STACK_BROKERS: String(this.o.nodes),
      VIGIL_STACK_KAFKA_SECURITY: this.o.security,
      VIGIL_KAFKA_HEAP: this.o.heap ?? '-Xms128m -Xmx320m',
      VIGIL_STACK_STOP_TIMEOUT: '20',
      VIGIL_STACK_TIMEOUT: '150',
    };
    const script = path.join(repoRoot(), 'deploy', 'local', 'kafka-cluster.sh');
    const r = spawnSync('env', [...Object.entries(settings).map(([k, v]) => `${k}=${v}`), 'bash', script, ...args], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`kafka-cluster.sh ${args.join(' ')} failed: ${r.stderr}\n${r.stdout}`);
    return r.stdout;
  }

  get brokers(): string {
    return this.script('bootstrap').trim();
  }

  /** Client port of node n (1-based). */
  port(n: number): number {
    return this.basePort + 2 * (n - 1);
  }

  /** The SCRAM users' passwords (sasl_ssl only). */
  credentials(): Record<string, string> {
    return Object.fromEntries(
      this.script('credentials')
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
  }

  get caFile(): string {
    return path.join(this.root, 'kafka-cluster', 'tls', 'ca.pem');
  }

  /** The VIGIL_KAFKA_* variables of a client that logs in as `user` (sasl_ssl), or plaintext. */
  clientEnv(user?: string): Record<string, string> {
    const env: Record<string, string> = { VIGIL_KAFKA_BROKERS: this.brokers };
    if (this.o.security !== 'sasl_ssl') return env;
    Object.assign(env, { VIGIL_KAFKA_SSL: 'on', VIGIL_KAFKA_SSL_CA_FILE: this.caFile });
    if (user) {
      Object.assign(env, {
        VIGIL_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        VIGIL_KAFKA_SASL_USERNAME: user,
        VIGIL_KAFKA_SASL_PASSWORD: this.credentials()[user]!,
      });
    }
    return env;
  }

  pid(n: number): number | undefined {
    return Number(this.script('pid', String(n)).trim()) || undefined;
  }

  /** SIGKILL of node n. */
  kill(n: number): void {
    this.script('kill', String(n));
  }

  /** Starts node n again; returns once it reports started. */
  startNode(n: number): void {
    this.script('start', String(n));
  }

  stop(): void {
    try {
      this.script('down');
    } catch {
      // already down
    }
  }

  remove(): void {
    this.stop();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** The first port of `count` consecutive free ports on 127.0.0.1 (checked a moment ago). */
async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => isFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no run of ${count} free ports found`);
}

const isFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
