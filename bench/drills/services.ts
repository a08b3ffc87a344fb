import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../core/paths';
import { freePort, sleep } from '../pipeline';

/**
 * Private services for the drills that stop one: the shared stack's PostgreSQL, Redis and Kafka are
 * used by other work at the same time and are never stopped. Each lives under `.local/drill/` on a
 * free port, and is started and removed by the drill itself.
 */
const drillRoot = () => path.join(repoRoot(), '.local', 'drill');

const asRoot = () => process.getuid?.() === 0;

/**
 * Where a private PostgreSQL's folder goes. Run as root, initdb and the server run as `postgres`, which
 * cannot enter a checkout under a 0700 directory (a clone in `mktemp -d`): such a checkout keeps its
 * clusters in `/var/tmp/vigil-drill-<hash of its path>`, as deploy/local/timescaledb.sh does.
 */
function postgresRoot(): string {
  const local = drillRoot();
  fs.mkdirSync(local, { recursive: true });
  if (!asRoot() || spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', local]).status === 0) return local;
  return path.join('/var/tmp', `vigil-drill-${createHash('sha256').update(local).digest('hex').slice(0, 12)}`);
}

/** A Redis from the machine's `redis-server`, no persistence (`--save ''`): a restart empties it. */
export class PrivateRedis {
  private child?: ChildProcess;
  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.up();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  async up(): Promise<void> {
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 20_000;
    while (spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).stdout?.trim() !== 'PONG') {
      if (Date.now() > deadline) throw new Error(`private redis on ${this.port} did not answer`);
      await sleep(100);
    }
  }

  /** SIGKILL: an abrupt stop (and, without persistence, every key gone). */
  async down(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }
}

/** A PostgreSQL 15 cluster (initdb as the `postgres` user when run as root), socket in its own folder. */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const port = await freePort();
    const dir = path.join(postgresRoot(), `pg-${port}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const pg = new PrivatePostgres(port, dir);
    if (asRoot()) spawnSync('chown', ['-R', 'postgres:postgres', dir]);
    try {
      pg.run('initdb', ['-D', path.join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
      await pg.up();
    } catch (err) {
      await pg.remove();
      throw err;
    }
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private bin(name: string): string {
    for (const v of ['15', '16', '17', '14']) {
      const p = `/usr/lib/postgresql/${v}/bin/${name}`;
      if (fs.existsSync(p)) return p;
    }
    return name;
  }

  private run(name: string, args: string[]): string {
    const cmd = asRoot() ? 'runuser' : this.bin(name);
    const full = asRoot() ? ['-u', 'postgres', '--', this.bin(name), ...args] : args;
    const r = spawnSync(cmd, full, { encoding: 'utf8', cwd: this.dir });
    if (r.status !== 0) throw new Error(`${name} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  async up(): Promise<void> {
    this.run('pg_ctl', [
      '-D',
      path.join(this.dir, 'data'),
      '-l',
      path.join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200${this.preload()}`,
      'start',
    ]);
  }

  /**
   * TimescaleDB preloaded when the server has it: an installed but not preloaded timescaledb makes
   * `CREATE EXTENSION` a FATAL error that ends the migration's connection.
   */
  private preload(): string {
    return fs.existsSync(path.join(path.dirname(this.bin('postgres')), '..', 'lib', 'timescaledb.so'))
      ? ' -c shared_preload_libraries=timescaledb'
      : '';
  }

  /** `pg_ctl stop -m immediate`: no clean shutdown, as a crash would be. */
  async down(): Promise<void> {
    this.run('pg_ctl', ['-D', path.join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }

  pids(): number[] {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout;
      return [pid, ...out.split('\n').filter(Boolean).map(Number)];
    } catch {
      return [];
    }
  }

  async remove(): Promise<void> {
    await this.down().catch(() => {});
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A second Kafka broker from `deploy/local/stack.sh` (only the kafka service, other ports, its own
 * data root under .local/drill/), so a broker can be stopped without touching the shared one.
 */
export class PrivateKafka {
  private constructor(
    readonly port: number,
    readonly controllerPort: number,
    readonly root: string,
  ) {}

  static async start(): Promise<PrivateKafka> {
    const port = await freePort();
    const controllerPort = await freePort();
    const root = path.join(drillRoot(), `kafka-${port}`);
    fs.rmSync(root, { recursive: true, force: true });
    fs.mkdirSync(root, { recursive: true });
    const k = new PrivateKafka(port, controllerPort, root);
    try {
      k.stack('up');
    } catch (err) {
      await k.remove();
      throw err;
    }
    return k;
  }

  get brokers(): string {
    return `127.0.0.1:${this.port}`;
  }

  stack(action: 'up' | 'down'): string {
    const r = spawnSync('bash', [path.join(repoRoot(), 'deploy', 'local', 'stack.sh'), action], {
      encoding: 'utf8',
      env: {
        ...process.env,
        VIGIL_STACK_LOCAL: this.root,
        VIGIL_STACK_SERVICES: 'kafka',
        VIGIL_KAFKA_PORT: String(this.port),
        VIGIL_KAFKA_CONTROLLER_PORT: String(this.controllerPort),
        VIGIL_KAFKA_HEAP: '-Xms128m -Xmx384m',
        VIGIL_STACK_STOP_TIMEOUT: '20',
      },
    });
    if (r.status !== 0) throw new Error(`stack.sh ${action} (private kafka) failed: ${r.stderr}\n${r.stdout}`);
    return r.stdout;
  }

  pid(): number | undefined {
    try {
      return Number(fs.readFileSync(path.join(this.root, 'kafka', 'kafka.pid'), 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  async remove(): Promise<void> {
    try {
      this.stack('down');
    } catch {
      // already down
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
