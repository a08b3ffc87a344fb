import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { Pool } from 'pg';
import { createApiKey } from '../core/api-keys';
import { createLogger } from '../core/logger';
import { migrate } from '../core/migrate';
import { repoRoot } from '../core/paths';
import { sessionEvents } from '../producers/simulator/session';
import { benchKafka } from './setup';
import { benchDatabaseServer, freePort, freshDatabase, sleep, watchChild } from './pipeline';
import { CLK_TCK, allPids, cmdline, machineBusyTicks, procStat, rssMiB } from './procstat';
import { countSpans, machine, peakRssMiB, percentile, round, spread, table, writeResults } from './lib';

/**
 * The HTTP ingest gateway end to end: `vigil gateway` from dist/ as its own process, a device key in
 * a fresh database, POST /v1/ingest/eeg bodies of 100 simulator EEG events over loopback, 202 only
 * after Kafka acknowledged (acks=all) on this machine's single-node Kafka.
 *
 * Two gateways run side by side, VIGIL_TRACING=off and on; the load alternates between them so both
 * see the same broker and machine. With tracing on, spans are exported with the Zipkin exporter (as
 * `npm start` does) to a sink in this process that counts and discards them: the local Zipkin keeps
 * spans in a 256 MB heap and runs out of memory at this rate (over 100 spans a request while kafkajs's
 * instrumentation made one span per message; a handful since: core/telemetry.ts).
 * 1. Max: autocannon, CONNECTIONS connections, pipelining 1, PHASE_S s; RUNS paired runs.
 * 2. Half rate (half of each variant's median max): autocannon `overallRate`, and a paced open-loop
 *    generator (uniform arrivals, latency from the scheduled send time, so no coordinated omission).
 * 3. The goal's half rate (10,000 events/s), paced, RUNS paired runs.
 * Meanwhile: RSS of each gateway every second, CPU of every process per phase (/proc), and at the
 * end the eeg topic's end offsets against the 2xx count.
 */
const EVENTS_PER_REQUEST = 100;
const BODIES = 16;
const CONNECTIONS = Number(process.env.VIGIL_BENCH_GATEWAY_CONNECTIONS ?? 16);
const PHASE_S = Number(process.env.VIGIL_BENCH_GATEWAY_SECONDS ?? 20);
const WARMUP_S = 5;
/** Idle gap before each phase: the previous one's tail (requests autocannon cut off, span export) settles. */
const SETTLE_MS = 3_000;
const RUNS = Number(process.env.VIGIL_BENCH_GATEWAY_RUNS ?? 3);
const GOAL_EVENTS_PER_S = 20_000;
const GOAL_P99_MS = 100;
const TENANT = 'bench-gw';

interface Variant {
  name: 'tracing off' | 'tracing on';
  env: Record<string, string>;
}
const variants: Variant[] = [
  { name: 'tracing off', env: { VIGIL_TRACING: 'off' } },
  // VIGIL_ZIPKIN_URL: the span sink's, once it listens.
  { name: 'tracing on', env: { VIGIL_TRACING: 'on' } },
];

interface Gateway {
  variant: Variant;
  child: ChildProcess;
  pid: number;
  url: string;
  output: () => string;
  exited: Promise<number>;
}

interface Latency {
  p50: number;
  p97_5: number;
  p99: number;
  p99_9: number;
  max: number;
  samples: number;
}

interface Landing {
  topic: string;
  end_offset_growth: number;
  expected_from_2xx: number;
  expected_max_with_unanswered: number;
  ok: boolean;
}

interface PhaseResult {
  phase: string;
  variant: Variant['name'];
  generator: string;
  seconds: number;
  target_requests_per_s?: number;
  requests_2xx: number;
  non_2xx: number;
  /** Non-2xx answers by status, and failed requests by `error <kind>`. */
  non_2xx_by_status: Record<string, number>;
  errors: number;
  timeouts: number;
  /** Sent but unanswered when the phase stopped (the gateway may still have published them). */
  unanswered_at_stop: number;
  requests_per_s: number;
  events_per_s: number;
  latency_ms: Latency;
  /** CPU cores used during the phase, by process group (cpu-seconds / wall seconds). */
  cpu_cores: Record<string, number>;
  machine_busy_cores: number;
  /** The busiest processes outside the bench's and the stack's (other work on the machine). */
  other_top: { cores: number; command: string }[];
  /** Paced runs: the slowest 202 of each second (ms), to see whether the tail comes in stalls. */
  max_latency_ms_per_second?: number[];
  spans_exported?: number;
}

export async function gatewayBench(): Promise<void> {
  const atStart = machine();
  const { config, kafka, topics } = await benchKafka('gateway');
  const db = await freshDatabase(benchDatabaseServer(), 'bench_gateway');
  const gateways: Gateway[] = [];
  const admin = kafka.admin();
  await admin.connect();
  const rss = new RssSampler();
  const sink = await spanSink();
  try {
    await migrate({ database: db.url, log: createLogger({ level: 'silent', role: 'bench-gateway' }) });
    const pool = new Pool({ connectionString: db.url, max: 1 });
    const { key } = await createApiKey(pool, { tenantId: TENANT, role: 'device', label: 'bench gateway' });
    await pool.end();
    const bodies = eegBodies();
    const offsetsBefore = await endOffset(admin, topics.eeg);

    variants[1]!.env.VIGIL_ZIPKIN_URL = sink.url;
    for (const variant of variants) {
      gateways.push(
        await startGateway(variant, {
          VIGIL_TOPIC_PREFIX: config.topicPrefix,
          VIGIL_DATABASE_URL: db.url,
          VIGIL_GATEWAY_RATE_PER_SEC: '100000000',
          VIGIL_LOG_LEVEL: 'warn',
          VIGIL_ZIPKIN_URL: '',
          OTEL_EXPORTER_OTLP_ENDPOINT: '',
          OTEL_METRICS_EXPORTER: 'none',
          OTEL_LOGS_EXPORTER: 'none',
        }),
      );
    }
    rss.start(gateways);
    const cpu = new CpuMeter(gateways);
    const phases: PhaseResult[] = [];
    const run = async (phase: string, gw: Gateway, load: () => Promise<LoadResult>) => {
      await sleep(SETTLE_MS);
      rss.phase = `${phase} (${gw.variant.name})`;
      const before = cpu.snapshot();
      const spansBefore = sink.spans;
      const r = await load();
      const p: PhaseResult = { phase, variant: gw.variant.name, ...r, ...cpu.since(before) };
      // The exporter sends every ~5 s (or per 512 spans): a count per phase, not exact at its edges.
      if (gw.variant.name === 'tracing on') p.spans_exported = sink.spans - spansBefore;
      phases.push(p);
      rss.phase = 'idle';
      process.stdout.write(
        `${phase.padEnd(22)} ${gw.variant.name.padEnd(12)} ${r.generator.padEnd(22)} ${Math.round(r.events_per_s)} events/s, ` +
          `p50 ${r.latency_ms.p50} p99 ${r.latency_ms.p99} ms, non-2xx ${r.non_2xx}, errors ${r.errors}, ` +
          `gateway ${p.cpu_cores[gw.variant.name]} kafka ${p.cpu_cores.kafka} bench ${p.cpu_cores.bench} cores\n`,
      );
      return p;
    };

    for (const gw of gateways) await run('warm-up', gw, () => cannon(gw, key, bodies, { seconds: WARMUP_S }));
    const max = new Map<Variant['name'], number[]>(variants.map((v) => [v.name, []]));
    for (let r = 0; r < RUNS; r++) {
      // ABBA order so a drift in the machine's state does not always favour the same variant.
      for (const gw of r % 2 ? [...gateways].reverse() : gateways) {
        const p = await run('1 max', gw, () => cannon(gw, key, bodies, { seconds: PHASE_S }));
        max.get(gw.variant.name)!.push(p.events_per_s);
      }
    }
    const half = new Map(
      variants.map((v) => [v.name, Math.max(1, Math.round(spread(max.get(v.name)!).median / EVENTS_PER_REQUEST / 2))]),
    );
    for (const gw of gateways) {
      const rate = half.get(gw.variant.name)!;
      await run('2 half of max', gw, () => cannon(gw, key, bodies, { seconds: PHASE_S, rate }));
      await run('2 half of max', gw, () => paced(gw, key, bodies, rate, PHASE_S));
    }
    const goalRate = GOAL_EVENTS_PER_S / 2 / EVENTS_PER_REQUEST;
    for (let r = 0; r < RUNS; r++) {
      for (const gw of r % 2 ? gateways : [...gateways].reverse()) {
        await run('3 goal half rate', gw, () => paced(gw, key, bodies, goalRate, PHASE_S));
      }
    }
    rss.stop();

    const hwm = new Map(gateways.map((g) => [g.variant.name, rssMiB(g.pid, 'VmHWM') ?? NaN]));
    const shutdown = await stopGateways(gateways);
    const offsetsAfter = await endOffset(admin, topics.eeg);

    const accepted = phases.reduce((n, p) => n + p.requests_2xx, 0);
    const unanswered = phases.reduce((n, p) => n + p.unanswered_at_stop + p.timeouts, 0);
    const landed = offsetsAfter - offsetsBefore;
    const landing: Landing = {
      topic: topics.eeg,
      end_offset_growth: landed,
      expected_from_2xx: accepted * EVENTS_PER_REQUEST,
      // Requests cut off by the end of an autocannon phase may have been published without a 202 seen.
      expected_max_with_unanswered: (accepted + unanswered) * EVENTS_PER_REQUEST,
      ok: landed >= accepted * EVENTS_PER_REQUEST && landed <= (accepted + unanswered) * EVENTS_PER_REQUEST,
    };

    const json = buildJson({ atStart, phases, max, half, goalRate, rss, hwm, shutdown, landing });
    writeResults('gateway', json, markdown(json));
  } finally {
    rss.stop();
    sink.close();
    if (gateways.some((g) => g.child.exitCode === null && g.child.signalCode === null)) await stopGateways(gateways);
    await admin.disconnect().catch(() => {});
    await db.drop().catch((err) => process.stderr.write(`dropping ${db.url}: ${String(err)}\n`));
  }
}

// ---------------------------------------------------------------------------------------------
// Set-up

/** BODIES JSON arrays of 100 EEG events, each the first 10 s of a different simulated session. */
function eegBodies(): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < BODIES; i++) {
    const events: unknown[] = [];
    for (const e of sessionEvents({
      seed: 11,
      index: i,
      tenantId: TENANT,
      // Recent: the gateway refuses ts more than 24 h behind (or 60 s ahead of) its clock.
      startTs: Math.floor(Date.now() / 1000) * 1000 - 60_000,
      durationMs: 15_000,
      profile: i % 2 ? 'drowsy' : 'alert',
    })) {
      if (e.topic === 'eeg' && events.length < EVENTS_PER_REQUEST) events.push(e.event);
    }
    bodies.push(JSON.stringify(events));
  }
  return bodies;
}

async function endOffset(admin: ReturnType<Awaited<ReturnType<typeof benchKafka>>['kafka']['admin']>, topic: string) {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((n, o) => n + Number(o.high), 0);
}

async function startGateway(variant: Variant, env: Record<string, string>): Promise<Gateway> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'main.js'), 'gateway'], {
    env: { ...process.env, ...env, ...variant.env, VIGIL_GATEWAY_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { output, exited } = watchChild(child);
  const gw: Gateway = { variant, child, pid: child.pid!, url: `http://127.0.0.1:${port}`, output, exited };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway (${variant.name}) exited ${child.exitCode}:\n${output()}`);
    const status = await fetch(`${gw.url}/health/ready`)
      .then((r) => r.status)
      .catch(() => 0);
    if (status === 200) return gw;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway (${variant.name}) not ready after 60 s (last status ${status}):\n${output()}`);
    }
    await sleep(250);
  }
}

/** SIGTERM to each gateway, then how long each took to exit (SIGKILL after 20 s) and its code. */
async function stopGateways(gateways: Gateway[]) {
  return Promise.all(
    gateways.map(async (g) => {
      const t0 = performance.now();
      if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGTERM');
      const timer = setTimeout(() => g.child.kill('SIGKILL'), 20_000);
      const code = await g.exited;
      clearTimeout(timer);
      const warnings = g
        .output()
        .split('\n')
        .filter((l) => /"level":(40|50|60)/.test(l));
      return {
        variant: g.variant.name,
        exit_code: code,
        shutdown_ms: Math.round(performance.now() - t0),
        warnings_logged: warnings.length,
        first_warnings: warnings.slice(0, 3).map((l) => l.slice(0, 400)),
      };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Load

type LoadResult = Omit<PhaseResult, 'phase' | 'variant' | 'cpu_cores' | 'machine_busy_cores' | 'other_top'>;

const ingestHeaders = (key: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${key}` });

/** autocannon in this process: closed loop at max, or its `overallRate` (per connection, per second). */
async function cannon(
  gw: Gateway,
  key: string,
  bodies: string[],
  o: { seconds: number; rate?: number },
): Promise<LoadResult> {
  const connections = o.rate ? Math.min(CONNECTIONS, o.rate) : CONNECTIONS;
  const r = await autocannon({
    url: gw.url,
    connections,
    pipelining: 1,
    duration: o.seconds,
    timeout: 10,
    overallRate: o.rate,
    // Its coordinated-omission correction assumes a 1 ms interval (ceil(1/rate)) and floods the
    // histogram with made-up samples; raw latencies instead (the paced run measures from schedule).
    ignoreCoordinatedOmission: o.rate ? true : undefined,
    headers: ingestHeaders(key),
    requests: bodies.map((body) => ({ method: 'POST' as const, path: '/v1/ingest/eeg', body })),
  });
  const byStatus: Record<string, number> = {};
  for (const [status, s] of Object.entries(r.statusCodeStats ?? {})) {
    if (!status.startsWith('2')) byStatus[status] = s.count ?? 0;
  }
  if (r.timeouts) byStatus['error timeout'] = r.timeouts;
  if (r.errors > r.timeouts) byStatus['error connection'] = r.errors - r.timeouts;
  const answered = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
  // autocannon counts each connection's first request as `rate` sent in rate mode (its bookkeeping).
  const sent = r.requests.sent - (o.rate ? o.rate - connections : 0);
  return {
    generator: o.rate ? `autocannon overallRate` : `autocannon ${CONNECTIONS} conn`,
    seconds: r.duration,
    target_requests_per_s: o.rate,
    requests_2xx: r['2xx'],
    non_2xx: r.non2xx,
    non_2xx_by_status: byStatus,
    errors: r.errors,
    timeouts: r.timeouts,
    unanswered_at_stop: Math.max(0, sent - answered - r.timeouts),
    requests_per_s: round(r['2xx'] / r.duration),
    events_per_s: round((r['2xx'] * EVENTS_PER_REQUEST) / r.duration),
    latency_ms: {
      p50: r.latency.p50,
      p97_5: r.latency.p97_5,
      p99: r.latency.p99,
      p99_9: r.latency.p99_9,
      max: r.latency.max,
      samples: r['2xx'],
    },
  };
}

/**
 * Open loop: request i is due at t0 + i/rate whatever happened to the earlier ones; its latency is
 * from when it was due to the end of the 202, so a stall shows up in every request it delays.
 * Waits for every response at the end (nothing is left unanswered).
 */
async function paced(gw: Gateway, key: string, bodies: string[], rate: number, seconds: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const u = new URL(gw.url);
  const buffers = bodies.map((b) => Buffer.from(b));
  const headers = ingestHeaders(key);
  const latencies: number[] = [];
  const perSecond: number[] = Array.from({ length: seconds }, () => 0);
  const byStatus: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  let timeouts = 0;
  const total = Math.round(rate * seconds);
  const pending: Promise<void>[] = [];
  const t0 = performance.now() + 50;
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const body = buffers[i % buffers.length]!;
    pending.push(
      new Promise<void>((resolve) => {
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            path: '/v1/ingest/eeg',
            method: 'POST',
            agent,
            timeout: 10_000,
            headers: { ...headers, 'content-length': body.length },
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) {
                ok++;
                const ms = performance.now() - due;
                latencies.push(ms);
                const second = Math.min(seconds - 1, Math.floor((due - t0) / 1000));
                perSecond[second] = Math.max(perSecond[second]!, Math.round(ms));
              } else byStatus[status] = (byStatus[status] ?? 0) + 1;
              resolve();
            });
          },
        );
        req.on('timeout', () => {
          timeouts++;
          req.destroy(new Error('timeout'));
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          // Counted with the statuses by kind; a timed-out request may still be published.
          const kind = `error ${err.code ?? err.message}`;
          byStatus[kind] = (byStatus[kind] ?? 0) + 1;
          errors++;
          resolve();
        });
        req.end(body);
      }),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => round(percentile(latencies, p), 1);
  return {
    generator: 'paced open loop',
    seconds: round(elapsed),
    target_requests_per_s: rate,
    requests_2xx: ok,
    non_2xx: Object.entries(byStatus).reduce((a, [k, n]) => a + (k.startsWith('error') ? 0 : n), 0),
    non_2xx_by_status: byStatus,
    errors,
    timeouts,
    unanswered_at_stop: 0,
    requests_per_s: round(ok / elapsed),
    events_per_s: round((ok * EVENTS_PER_REQUEST) / elapsed),
    latency_ms: {
      p50: q(50),
      p97_5: q(97.5),
      p99: q(99),
      p99_9: q(99.9),
      max: round(latencies.at(-1) ?? NaN, 1),
      samples: latencies.length,
    },
    max_latency_ms_per_second: perSecond,
  };
}

/**
 * A Zipkin-compatible endpoint (POST /api/v2/spans, 202) that counts the spans it is sent (by their
 * `"traceId"` fields, without parsing) and keeps nothing.
 */
async function spanSink(): Promise<{ url: string; spans: number; close: () => void }> {
  const state = { url: '', spans: 0, close: () => server.close() };
  const server = http.createServer(countSpans((n) => (state.spans += n)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/api/v2/spans`;
  return state;
}

// ---------------------------------------------------------------------------------------------
// Measurements of the machine

/** Each gateway's RSS (MiB) every second, labelled with the phase running at the time. */
class RssSampler {
  phase = 'idle';
  readonly samples: { t_s: number; phase: string; rss_mib: Record<string, number> }[] = [];
  private timer?: NodeJS.Timeout;

  start(gateways: Gateway[]): void {
    const t0 = performance.now();
    const sample = () =>
      this.samples.push({
        t_s: Math.round((performance.now() - t0) / 1000),
        phase: this.phase,
        rss_mib: Object.fromEntries(gateways.map((g) => [g.variant.name, rssMiB(g.pid, 'VmRSS') ?? NaN])),
      });
    sample();
    this.timer = setInterval(sample, 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** CPU ticks of every process, grouped: each gateway, this process, the stack's services, the rest. */
class CpuMeter {
  private readonly groups = new Map<number, string>();

  constructor(gateways: Gateway[]) {
    for (const g of gateways) this.groups.set(g.pid, g.variant.name);
    this.groups.set(process.pid, 'bench');
    for (const [service, pid] of stackPids()) this.groups.set(pid, service);
  }

  snapshot(): { t: number; ticks: Map<number, [string, number, string]>; busy: number } {
    const ticks = new Map<number, [string, number, string]>();
    for (const pid of allPids()) {
      const stat = procStat(pid);
      if (!stat) continue; // exited meanwhile
      const group = this.groups.get(pid) ?? (stat.comm === 'postgres' ? 'postgres' : 'other');
      ticks.set(pid, [group, stat.ticks, stat.comm]);
    }
    return { t: performance.now(), ticks, busy: machineBusyTicks() };
  }

  since(before: ReturnType<CpuMeter['snapshot']>): Pick<PhaseResult, 'cpu_cores' | 'machine_busy_cores' | 'other_top'> {
    const now = this.snapshot();
    const seconds = (now.t - before.t) / 1000;
    const cores: Record<string, number> = {};
    const others: [number, number, string][] = [];
    for (const [pid, [group, t, comm]] of now.ticks) {
      const dt = t - (before.ticks.get(pid)?.[1] ?? 0);
      cores[group] = (cores[group] ?? 0) + dt;
      if (group === 'other' && dt > 0) others.push([pid, dt, comm]);
    }
    const perCore = (ticks: number) => Math.round((ticks / CLK_TCK / seconds) * 100) / 100;
    for (const g of Object.keys(cores)) cores[g] = perCore(cores[g]!);
    const other_top = others
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([pid, dt, comm]) => ({ cores: perCore(dt), command: (cmdline(pid) ?? '(exited)') || comm }));
    return { cpu_cores: cores, machine_busy_cores: perCore(now.busy - before.busy), other_top };
  }
}

/** PIDs of the local stack's services from `stack.sh status` (none when the stack runs elsewhere). */
function stackPids(): [string, number][] {
  // status exits 1 when a service is down; its table is still there.
  const out = spawnSync('bash', [path.join(repoRoot(), 'deploy', 'local', 'stack.sh'), 'status'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    encoding: 'utf8',
  }).stdout;
  try {
    return (out ?? '')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c.length >= 4 && /^\d+$/.test(c[3]!) && c[0] !== 'postgres')
      .map((c) => [c[0]!, Number(c[3])]);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Results

function buildJson(o: {
  atStart: ReturnType<typeof machine>;
  phases: PhaseResult[];
  max: Map<Variant['name'], number[]>;
  half: Map<Variant['name'], number>;
  goalRate: number;
  rss: RssSampler;
  hwm: Map<Variant['name'], number>;
  shutdown: Awaited<ReturnType<typeof stopGateways>>;
  landing: Landing;
}) {
  const byVariant = Object.fromEntries(
    variants.map((v) => {
      const maxPhases = o.phases.filter((p) => p.variant === v.name && p.phase === '1 max');
      const goalPhases = o.phases.filter((p) => p.variant === v.name && p.phase === '3 goal half rate');
      const loaded = o.rss.samples.filter((s) => s.phase.endsWith(`(${v.name})`) && !s.phase.startsWith('warm-up'));
      const all = o.rss.samples.map((s) => s.rss_mib[v.name]!).filter((n) => Number.isFinite(n));
      // CPU over all max runs of this variant: cpu-seconds per 1,000 accepted events, by group.
      const wall = maxPhases.reduce((n, p) => n + p.seconds, 0);
      const events = maxPhases.reduce((n, p) => n + p.requests_2xx * EVENTS_PER_REQUEST, 0);
      const groups = [...new Set(maxPhases.flatMap((p) => Object.keys(p.cpu_cores)))];
      const cores = Object.fromEntries(
        groups.map((g) => [g, round(maxPhases.reduce((n, p) => n + (p.cpu_cores[g] ?? 0) * p.seconds, 0) / wall, 2)]),
      );
      const gatewayCpuS = maxPhases.reduce((n, p) => n + (p.cpu_cores[v.name] ?? 0) * p.seconds, 0);
      return [
        v.name,
        {
          env: v.env,
          max_events_per_s: spread(o.max.get(v.name)!),
          max_non_2xx: maxPhases.reduce((n, p) => n + p.non_2xx + p.errors, 0),
          max_latency_ms_median_run: [...maxPhases].sort((a, b) => a.events_per_s - b.events_per_s)[
            Math.floor(maxPhases.length / 2)
          ]!.latency_ms,
          half_rate_requests_per_s: o.half.get(v.name),
          goal_half_rate_p50_ms: spread(goalPhases.map((p) => p.latency_ms.p50)),
          goal_half_rate_p99_ms: spread(goalPhases.map((p) => p.latency_ms.p99)),
          goal_half_rate_median_run: [...goalPhases].sort((a, b) => a.latency_ms.p99 - b.latency_ms.p99)[
            Math.floor(goalPhases.length / 2)
          ]!,
          cpu_cores_during_max: cores,
          machine_busy_cores_during_max: round(
            maxPhases.reduce((n, p) => n + p.machine_busy_cores * p.seconds, 0) / wall,
            2,
          ),
          gateway_cpu_ms_per_1000_events: round((gatewayCpuS * 1000 * 1000) / events, 2),
          rss_mib: {
            after_ready: all[0],
            first_under_load: loaded[0]?.rss_mib[v.name],
            last_under_load: loaded.at(-1)?.rss_mib[v.name],
            min_under_load: Math.min(...loaded.map((x) => x.rss_mib[v.name]!)),
            max_under_load: Math.max(...loaded.map((x) => x.rss_mib[v.name]!)),
            max_sampled: Math.max(...all),
            peak_vmhwm: o.hwm.get(v.name)!,
          },
        },
      ];
    }),
  );
  const off = o.phases.filter((p) => p.phase === '1 max' && p.variant === 'tracing off');
  const on = o.phases.filter((p) => p.phase === '1 max' && p.variant === 'tracing on');
  const tracedOn = o.phases.filter((p) => p.variant === 'tracing on' && p.phase !== 'warm-up');
  // Processes outside the bench and the stack, in cores averaged over all phases.
  const wallAll = o.phases.reduce((n, p) => n + p.seconds, 0);
  const others = new Map<string, number>();
  for (const p of o.phases) {
    for (const x of p.other_top) others.set(x.command, (others.get(x.command) ?? 0) + (x.cores * p.seconds) / wallAll);
  }
  return {
    machine: o.atStart,
    loadavg_at_end: os.loadavg().map((l) => Math.round(l * 100) / 100),
    goal: `>= ${GOAL_EVENTS_PER_S} events/s in batches of ${EVENTS_PER_REQUEST}; p99 time to 202 <= ${GOAL_P99_MS} ms at half that rate`,
    setup: {
      events_per_request: EVENTS_PER_REQUEST,
      distinct_bodies: BODIES,
      body_bytes: Buffer.byteLength(eegBodies()[0]!),
      connections: CONNECTIONS,
      pipelining: 1,
      phase_seconds: PHASE_S,
      runs: RUNS,
      topic_partitions: 12,
      gateway:
        'node dist/main.js gateway, separate process; VIGIL_GATEWAY_RATE_PER_SEC=100000000, VIGIL_LOG_LEVEL=warn',
      load_generator: 'autocannon 9 (in the bench process) and a paced node:http open-loop client, 127.0.0.1',
    },
    variants: byVariant,
    tracing_on_to_off_max_ratio: spread(on.map((p, i) => p.events_per_s / off[i]!.events_per_s)),
    tracing_spans_exported_per_request: round(
      tracedOn.reduce((n, p) => n + (p.spans_exported ?? 0), 0) / tracedOn.reduce((n, p) => n + p.requests_2xx, 0),
      2,
    ),
    tracing_on_to_off_gateway_cpu_per_event_ratio: round(
      byVariant['tracing on']!.gateway_cpu_ms_per_1000_events /
        byVariant['tracing off']!.gateway_cpu_ms_per_1000_events,
      2,
    ),
    other_work_during_run: [...others]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([command, cores]) => ({ cores: round(cores, 2), command })),
    events_landed: o.landing,
    shutdown: o.shutdown,
    phases: o.phases,
    rss_samples: o.rss.samples,
    bench_process_peak_rss_mib: peakRssMiB(),
  };
}

function markdown(j: ReturnType<typeof buildJson>): string {
  const v = j.variants;
  const names = variants.map((x) => x.name);
  const f2 = (n: number) => n.toFixed(2);
  const range = (s: Spread3) => `${Math.round(s.median)} (${Math.round(s.min)}-${Math.round(s.max)})`;
  const lat = (l: Latency) => [l.p50, l.p97_5, l.p99, l.p99_9].map((x) => Math.round(x)).join(' / ');
  const phase = (name: string, variant: string, gen: string) =>
    j.phases.find((p) => p.phase === name && p.variant === variant && p.generator.startsWith(gen));
  const fails = (ps: PhaseResult[]) => {
    const by: Record<string, number> = {};
    for (const p of ps) for (const [k, n] of Object.entries(p.non_2xx_by_status)) by[k] = (by[k] ?? 0) + n;
    const total = Object.values(by).reduce((a, b) => a + b, 0);
    return total
      ? `${total} (${Object.entries(by)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ')})`
      : '0';
  };
  const stalls = (p?: PhaseResult) =>
    p?.max_latency_ms_per_second
      ? `${p.max_latency_ms_per_second.filter((x) => x > GOAL_P99_MS).length} of ${p.max_latency_ms_per_second.length} s`
      : '';
  const rows: (string | number)[][] = [];
  for (const n of names) {
    rows.push([
      `1 max, ${n}`,
      `autocannon ${CONNECTIONS} conn, ${RUNS} runs`,
      range(v[n]!.max_events_per_s),
      lat(v[n]!.max_latency_ms_median_run),
      fails(j.phases.filter((p) => p.phase === '1 max' && p.variant === n)),
      '',
    ]);
  }
  for (const [name, gen] of [
    ['2 half of max', 'autocannon'],
    ['2 half of max', 'paced'],
  ] as const) {
    for (const n of names) {
      const p = phase(name, n, gen);
      if (!p) continue;
      rows.push([
        `${name}, ${n}`,
        `${gen === 'paced' ? 'paced open loop' : 'autocannon overallRate'} ${p.target_requests_per_s} req/s`,
        Math.round(p.events_per_s),
        lat(p.latency_ms),
        fails([p]),
        stalls(p),
      ]);
    }
  }
  for (const n of names) {
    const p = v[n]!.goal_half_rate_median_run;
    const all = j.phases.filter((x) => x.phase === '3 goal half rate' && x.variant === n);
    rows.push([
      `3 goal half rate, ${n}`,
      `paced open loop ${p.target_requests_per_s} req/s, ${all.length} runs`,
      Math.round(p.events_per_s),
      `${lat(p.latency_ms)} (p99 of the runs: ${all.map((x) => Math.round(x.latency_ms.p99)).join(', ')})`,
      fails(all),
      all.map(stalls).join(', '),
    ]);
  }
  const cpuGroups = [...names, 'kafka', 'bench', 'redis', 'postgres', 'registry', 'zipkin', 'other'];
  const goalP99 = names.map((n) => v[n]!.goal_half_rate_p99_ms.median);
  const halfP99 = names.map((n) => phase('2 half of max', n, 'paced')!.latency_ms.p99);
  const bestName = names.reduce((a, b) => (v[a]!.max_events_per_s.median >= v[b]!.max_events_per_s.median ? a : b));
  const best = v[bestName]!.max_events_per_s;
  const l = j.events_landed;
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  return [
    `Goal: ${j.goal}.`,
    `Machine: ${j.machine.cpus} CPUs (${j.machine.cpu_model}), ${j.machine.memory_gib} GiB, Node ${j.machine.node}; load average at start ${j.machine.loadavg_at_start.join(' / ')}, at end ${j.loadavg_at_end.join(' / ')}. Kafka (single node), the registry, PostgreSQL, Redis, the gateways and the load generator all share the 2 cores.`,
    '',
    `**Goal vs measured.** Throughput: goal ${GOAL_EVENTS_PER_S} events/s; measured ${range(best)} events/s (median (min-max) of ${RUNS} runs, ${bestName}): ${met(best.median >= GOAL_EVENTS_PER_S)}` +
      `${best.median >= GOAL_EVENTS_PER_S && best.min < GOAL_EVENTS_PER_S ? ' by the median, not by every run' : ''}. ` +
      `p99 time to 202 at the goal's half rate (${GOAL_EVENTS_PER_S / 2} events/s, paced; median (min-max) of ${RUNS} runs): ${names.map((n) => `${range(v[n]!.goal_half_rate_p99_ms)} ms ${n}`).join(', ')}; ` +
      `at half of the measured max: ${names.map((n, i) => `${Math.round(halfP99[i]!)} ms ${n}`).join(', ')}; goal <= ${GOAL_P99_MS} ms: ` +
      `${names.map((n, i) => `${met(goalP99[i]! <= GOAL_P99_MS)} ${n}`).join(', ')}.`,
    '',
    table(
      [
        'phase, gateway',
        'load',
        'events/s accepted (max: median (min-max))',
        'ms to 202: p50 / p97.5 / p99 / p99.9',
        'non-2xx + errors',
        `seconds with a 202 over ${GOAL_P99_MS} ms`,
      ],
      rows,
    ),
    '',
    `Tracing on / off (paired max runs): events/s ratio ${f2(j.tracing_on_to_off_max_ratio.median)} (${f2(j.tracing_on_to_off_max_ratio.min)}-${f2(j.tracing_on_to_off_max_ratio.max)}); ` +
      `gateway CPU per event ratio ${f2(j.tracing_on_to_off_gateway_cpu_per_event_ratio)} (${names.map((n) => `${f2(v[n]!.gateway_cpu_ms_per_1000_events)} CPU-ms per 1,000 events ${n}`).join(', ')}). ` +
      `Spans exported per request with tracing on: ${f2(j.tracing_spans_exported_per_request)} (VIGIL_TRACE_SAMPLE_RATIO 1: every request; one send span per request since kafkajs's per-message spans were turned off, about 100 a request before; Zipkin exporter to a discarding sink in the bench process).`,
    '',
    'CPU cores used during the max runs (average over the runs; 2 cores in all; "bench" is autocannon, "other" is everything else on the machine):',
    '',
    table(
      ['load on', ...cpuGroups, 'machine busy'],
      names.map((n) => [
        n,
        ...cpuGroups.map((g) => f2(v[n]!.cpu_cores_during_max[g] ?? 0)),
        f2(v[n]!.machine_busy_cores_during_max),
      ]),
    ),
    '',
    `Other work on the machine (other engineers' builds and tests), averaged over all phases: ${j.other_work_during_run.map((x) => `${f2(x.cores)} cores ${x.command}`).join('; ') || 'none'}.`,
    '',
    `Events landed: ${l.topic} end offsets grew by ${l.end_offset_growth}; 2xx × ${EVENTS_PER_REQUEST} = ${l.expected_from_2xx}, at most ${l.expected_max_with_unanswered} counting requests cut off unanswered at the end of an autocannon phase: ${l.ok ? 'consistent' : '**inconsistent**'}.`,
    '',
    `RSS (MiB): ${names
      .map(
        (n) =>
          `gateway ${n}: ${v[n]!.rss_mib.after_ready} once ready, ${v[n]!.rss_mib.first_under_load} first and ${v[n]!.rss_mib.last_under_load} last sample under load after warm-up (${v[n]!.rss_mib.min_under_load}-${v[n]!.rss_mib.max_under_load} over all samples under load), peak (VmHWM) ${v[n]!.rss_mib.peak_vmhwm}`,
      )
      .join('; ')}; bench process (autocannon, paced client, span sink) peak ${j.bench_process_peak_rss_mib}. ` +
      `Shutdown on SIGTERM: ${j.shutdown.map((s) => `${s.variant} exit ${s.exit_code} in ${s.shutdown_ms} ms, ${s.warnings_logged} warnings logged`).join('; ')}.`,
    '',
    `Notes: autocannon's overallRate is per connection and per second (each connection sends its quota as fast as it can at the top of each second), so its half-rate latencies are those of bursts; the paced client spreads requests evenly and measures from each request's scheduled time (no coordinated omission). p99.9 of a ${PHASE_S} s run at ~100 req/s rests on 2 samples. Max-run latencies are those of the median-throughput run (closed loop: queueing, not service time). Events are ${EVENTS_PER_REQUEST} simulator EEG epochs per request (${j.setup.body_bytes} bytes of JSON), ${BODIES} distinct bodies, topic of 12 partitions.`,
  ].join('\n');
}

type Spread3 = { median: number; min: number; max: number };
