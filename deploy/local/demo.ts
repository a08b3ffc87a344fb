import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../../core/paths';
import { runStackScript } from './stack';

/**
 * `npm start`: brings the local stack up, prepares it (migrations, topics, schemas), then runs the
 * fatigue processor, the projection worker, the API, the jobs worker and the simulator as separate `vigil` processes (the same shape as
 * production), prints where to look, and on Ctrl-C stops them with SIGTERM and waits for them.
 * Each process's JSON log goes to .local/logs/<role>.log.
 */
export interface DemoOptions {
  sessions: number;
  durationMs: number;
  startStack: boolean;
  /** Where the API will listen (from the validated config). */
  api: { host: string; port: number };
  /** Where the ingest gateway listens (config.gateway), for the closing message. */
  gateway: { host: string; port: number };
  /** Environment handed to the child processes (main passes its own). */
  env: NodeJS.ProcessEnv;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const root = repoRoot();
  const logs = path.join(root, '.local', 'logs');
  fs.mkdirSync(logs, { recursive: true });
  const env: NodeJS.ProcessEnv = { VIGIL_ZIPKIN_URL: 'http://127.0.0.1:9411/api/v2/spans', ...opts.env };
  const vigil = (args: string[], logName?: string, extraEnv: NodeJS.ProcessEnv = {}): ChildProcess => {
    const out = logName ? fs.openSync(path.join(logs, `${logName}.log`), 'a') : 'inherit';
    return spawn(process.execPath, [path.join(root, 'dist', 'main.js'), ...args], {
      env: { ...env, ...extraEnv },
      stdio: ['ignore', out, out],
    });
  };
  /** GET /metrics of a role at the fixed address deploy/local/prometheus.yml scrapes. */
  const metricsAt = (port: number): NodeJS.ProcessEnv => ({
    VIGIL_METRICS_HOST: '127.0.0.1',
    VIGIL_METRICS_PORT: String(port),
  });
  const step = async (what: string, args: string[]) => {
    say(`${what} ...`);
    const code = await exitOf(vigil(args, 'setup'));
    if (code !== 0) throw new Error(`${what} failed (exit ${code}); see ${path.join(logs, 'setup.log')}`);
  };

  if (opts.startStack && (await runStackScript('up')) !== 0) return 1;
  const children: ChildProcess[] = [];
  /**
   * Ctrl-C reaches the whole process group, so the children already got SIGINT and shut down on
   * their own; a second signal would make them exit at once. They are sent SIGTERM only when the
   * demo itself got SIGTERM, or when they are still running after their grace period.
   */
  const stopAll = async (signalled: boolean) => {
    const live = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
    if (!signalled) for (const c of live()) c.kill('SIGTERM');
    const late = setTimeout(() => live().forEach((c) => c.kill('SIGTERM')), 20_000);
    await Promise.all(children.map(exitOf));
    clearTimeout(late);
  };
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    say('stopping Vigil processes (the stack keeps running: npm run stack:down stops it) ...');
    void stopAll(signal === 'SIGINT').then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await step('migrating', ['migrate']);
    await step('ensuring topics', ['topics', 'ensure']);
    await step('registering schemas', ['schemas', 'register']);
    say('creating a reader API key for tenant demo ...');
    const key = await readerKey(root, env);
    children.push(
      vigil(['process'], 'process', metricsAt(9464)),
      vigil(['project'], 'project', metricsAt(9465)),
      vigil(['api'], 'api', { VIGIL_METRICS_PORT: '0' }), // /metrics on the API's own port
      vigil(['jobs'], 'jobs', metricsAt(9466)),
      vigil(['gateway'], 'gateway', metricsAt(9467)),
    );
    const base = `http://${opts.api.host}:${opts.api.port}`;
    await waitReady(`${base}/health/ready`, children);
    const sim = vigil(
      ['simulate', '--sessions', String(opts.sessions), '--duration', `${opts.durationMs}ms`],
      'simulate',
    );
    children.push(sim);
    const ids = await firstLineOf(path.join(logs, 'simulate.log'), /^sessions: (.+)$/m);
    say(
      `Vigil is running. The fleet board: ${base}/ui (sign in with the reader key ${key})\nTry:\n  curl -H 'Authorization: Bearer ${key}' ${base}/v1/sessions/${ids[0]}\n` +
        `  curl ${base}/health/ready   (API reference: ${base}/docs)\n` +
        `Scores and alerts as they are computed: node dist/main.js tail scores   (or: tail alerts)\n` +
        `Other sessions: ${ids.slice(1).join(' ')}\nTraces: http://127.0.0.1:9411/zipkin/  Logs: ${logs}/\n` +
        `Ingest gateway: http://${opts.gateway.host}:${opts.gateway.port}/v1/ingest/<stream> (device keys: vigil keys create --role device)\n` +
        `Metrics: every role's /metrics (process :9464, project :9465, jobs :9466, gateway :9467, api ${base}/metrics);` +
        ` Prometheus with the alert rules: VIGIL_STACK_PROMETHEUS=1 npm start, then http://127.0.0.1:9090\nCtrl-C stops Vigil.`,
    );
    await Promise.all(children.map(exitOf));
    return 0;
  } catch (err) {
    say(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll(false);
    return 1;
  }
}

/** A new reader key of tenant `demo` (the simulator's tenant), from `vigil keys create`. */
async function readerKey(root: string, env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist', 'main.js'), 'keys', 'create', '--tenant', 'demo', '--role', 'reader', '--label', 'demo'],
    { env, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number>((r) => child.once('close', (c) => r(c ?? 1)));
  const key = /vgl_\S+/.exec(out)?.[0];
  if (code !== 0 || !key) throw new Error(`creating the demo API key failed (exit ${code})`);
  return key;
}

const say = (msg: string) => process.stdout.write(`[vigil demo] ${msg}\n`);

const exitOf = (c: ChildProcess): Promise<number> =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve(c.exitCode ?? 1)
    : new Promise((r) => c.once('exit', (code) => r(code ?? 1)));

async function waitReady(url: string, children: ChildProcess[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.exitCode !== null);
    if (dead) throw new Error(`a Vigil process exited early (${dead.spawnargs.slice(2).join(' ')}); see .local/logs/`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(500);
  }
  throw new Error(`API not ready at ${url} within ${timeoutMs / 1000} s`);
}

async function firstLineOf(file: string, re: RegExp, timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = fs.existsSync(file) ? re.exec(fs.readFileSync(file, 'utf8').split('\n').reverse().join('\n')) : null;
    if (m) return m[1]!.split(' ');
    await sleep(200);
  }
  throw new Error(`simulator did not start; see ${file}`);
}
