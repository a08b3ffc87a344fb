import { execSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from 'pg';
import { Redis } from 'ioredis';
import { createApiKey } from '../core/api-keys';
import { repoRoot } from '../core/paths';
import { sessionIdOf } from '../producers/simulator/session';
import { fatigueV1 } from '../processors/fatigue/config';
import { fatigueProcessor } from '../processors/fatigue/keyed-processor';
import { readModels } from '../projections/index';
import { redisTopics } from '../projections/redis/model';
import { redisKeys } from '../core/redis-keys';
import type { TopicKey } from '../schemas/catalogue';
import { machine, percentile, round, table, writeResults } from './lib';
import { Pipeline, sleep } from './pipeline';
import { ProcSampler, pidListeningOn, pidsByComm } from './procstat';
import type { LoadArgs } from './e2e-load';

/**
 * The whole pipeline under live load (`npm run bench -- e2e`). For each step S (live sessions):
 * fresh topics and database, `vigil process`, `vigil project`, `vigil api` (and `vigil gateway` with
 * `--via gateway`) as separate processes, and S simulated sessions in real time from a load process
 * (bench/e2e-load.ts). Measured during the step:
 * - sustained events/s: growth of the input topics' end offsets;
 * - freshness (a), device `ts` → row in PostgreSQL: every `--poll-ms`, `sessions.last_seen_at` of
 *   the sampled sessions (written in the same transaction as the frame rows); when it moves, the
 *   sample is now − last_seen_at. An upper bound with the poll interval as resolution;
 * - freshness (b), window end → score visible through the API: `GET /v1/sessions/:id` of the
 *   sampled sessions; when the latest score's ts (= its window end) moves, now − ts. The processor
 *   holds a window until the watermark (max ts − allowed lateness) passes its end, so this includes
 *   the allowed lateness by design; the part after the window closes is (b) − allowed lateness;
 * - consumer lag every 2 s: the processor's group (committed offsets vs input ends) and every
 *   projection (its checkpoint vs the ends of its topics);
 * - CPU and RSS per process every second from /proc.
 * A step passes when (a) p99 and (b − lateness) p99 are under 1 s, nothing crashed and at least 95%
 * of the offered events were published. Steps go up until one fails; then the largest passing S is
 * held for `--hold-seconds`.
 */
interface E2eOptions {
  via: 'producer' | 'gateway';
  steps: number[];
  stepSeconds: number;
  holdSeconds: number;
  sample: number;
  pollMs: number;
  partitions: number;
  cpuProf: boolean;
}

const WARMUP_S = 10;
const GOAL_MS = 1_000;
const LATENESS_MS = fatigueV1.allowedLatenessMs;

function parseArgs(argv: string[]): E2eOptions {
  const o: E2eOptions = {
    via: 'producer',
    steps: [25, 50, 100, 200, 400, 800],
    stepSeconds: 60,
    holdSeconds: 300,
    sample: 20,
    pollMs: 100,
    partitions: 12,
    cpuProf: false,
  };
  const num = (flag: string, v: string | undefined, min = 1) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--via') {
      const v = argv[++i];
      if (v !== 'producer' && v !== 'gateway') throw new Error('--via producer|gateway');
      o.via = v;
    } else if (a === '--steps') o.steps = (argv[++i] ?? '').split(',').map((s) => num('--steps', s));
    else if (a === '--step-seconds') o.stepSeconds = num(a, argv[++i], 15);
    else if (a === '--hold-seconds') o.holdSeconds = num(a, argv[++i], 0);
    else if (a === '--sample') o.sample = num(a, argv[++i]);
    else if (a === '--poll-ms') o.pollMs = num(a, argv[++i], 20);
    else if (a === '--partitions') o.partitions = num(a, argv[++i]);
    else if (a === '--cpu-prof') o.cpuProf = true;
    else
      throw new Error(
        `unknown argument ${a}; usage: npm run bench -- e2e [--via producer|gateway] [--steps 25,50,100] [--step-seconds 60] [--hold-seconds 300] [--sample 20] [--poll-ms 100] [--partitions 12] [--cpu-prof]`,
      );
  }
  return o;
}

const pcts = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
};

type Pcts = ReturnType<typeof pcts>;

interface StepResult {
  sessions: number;
  seconds: number;
  kind: 'step' | 'hold';
  passed: boolean;
  why_not?: string;
  events_offered: number;
  events_published: number;
  events_per_s_sustained: number;
  freshness_row_ms: Pcts;
  freshness_score_api_ms: Pcts;
  freshness_score_after_close_ms: Pcts;
  score_source: string;
  lag: { t: number; processor: number; projections: Record<string, number> }[];
  lag_max: Record<string, number>;
  cpu_rss: ReturnType<ProcSampler['summary']>;
  cpu_rss_samples: ProcSampler['samples'];
  crashes: string[];
  profiles?: string[];
}

/**
 * The latest score's window end (epoch ms) in a session document of the API: `latest.ts` (the
 * Redis latest hash, PostgreSQL when Redis is down), else `scores.last_at`. `capable` is false when
 * the document has neither field (an API without scores: the bench then reads PostgreSQL).
 */
function scoreTsOf(body: unknown): { capable: boolean; ts?: number } {
  const b = body as Record<string, unknown> | null;
  if (!b || typeof b !== 'object') return { capable: false };
  const latest = b.latest as Record<string, unknown> | null | undefined;
  const scores = b.scores as Record<string, unknown> | null | undefined;
  const capable = 'latest' in b || (!!scores && 'last_at' in scores);
  for (const c of [latest?.ts, scores?.last_at]) {
    if (typeof c === 'number') return { capable, ts: c };
    if (typeof c === 'string' && !Number.isNaN(Date.parse(c))) return { capable, ts: Date.parse(c) };
  }
  return { capable };
}

async function runStep(
  o: E2eOptions,
  sessions: number,
  seconds: number,
  kind: StepResult['kind'],
): Promise<StepResult> {
  const log = (s: string) => process.stdout.write(`[e2e S=${sessions}] ${s}\n`);
  const p = await Pipeline.create({ name: 'e2e', partitions: o.partitions });
  const redis = new Redis(p.config.redisUrl, { lazyConnect: false });
  const pool = new Pool({ connectionString: p.db.url, max: 3 });
  const profileDir = path.join(repoRoot(), '.local', 'profiles', p.config.topicPrefix);
  const nodeArgs = o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  let sampler: ProcSampler | undefined;
  try {
    const reader = await createApiKey(pool, { tenantId: 'bench', role: 'reader', label: 'e2e bench' });
    await p.startApi();
    await p.startWorkers(nodeArgs);
    const load: LoadArgs = { via: o.via, sessions, seconds, seed: 5, tenant: 'bench' };
    if (o.via === 'gateway') {
      await p.startGateway({ VIGIL_GATEWAY_RATE_PER_SEC: '100000000' });
      load.gatewayUrl = p.gatewayUrl;
      load.deviceKey = (await createApiKey(pool, { tenantId: 'bench', role: 'device', label: 'e2e bench' })).key;
    }
    log(`pipeline up (${p.config.topicPrefix})`);

    const brokerPort = Number(p.config.kafka.brokers[0]?.split(':')[1] ?? 9092);
    const fixed: Record<string, number[]> = {
      kafka: [pidListeningOn(brokerPort)].filter((x): x is number => !!x),
      postgres: pidsByComm('postgres'),
      redis: pidsByComm('redis-server'),
      registry: [pidListeningOn(8081)].filter((x): x is number => !!x),
      bench: [process.pid],
    };
    sampler = new ProcSampler(() => ({ ...p.pids(), ...fixed }));
    sampler.start();

    const sampled = Array.from({ length: Math.min(o.sample, sessions) }, (_, i) =>
      sessionIdOf(load.seed, Math.floor((i * sessions) / Math.min(o.sample, sessions))),
    );
    const inputs = fatigueProcessor.inputs.map((k) => p.topics[k as TopicKey]);
    const inputsEnd = async () => {
      let n = 0;
      for (const t of inputs) for (const x of await p.admin.fetchTopicOffsets(t)) n += Number(x.high);
      return n;
    };
    const start0 = await inputsEnd();
    const loader = p.start(
      'load',
      [JSON.stringify(load)],
      {},
      { script: path.join(repoRoot(), 'dist', 'bench', 'e2e-load.js') },
    );
    const t0 = Date.now();
    let running = true;
    void loader.exited.then(() => (running = false));

    const rowLat: number[] = [];
    const scoreLat: number[] = [];
    const lastRow = new Map<string, number>();
    const lastScore = new Map<string, number>();
    let scoreSource = 'api';
    const rowPoll = async () => {
      while (running) {
        const began = Date.now();
        const { rows } = await pool.query<{ session_id: string; last_seen_at: Date | null }>(
          'SELECT session_id, last_seen_at FROM sessions WHERE session_id = ANY($1)',
          [sampled],
        );
        const now = Date.now();
        for (const r of rows) {
          const ts = r.last_seen_at?.getTime();
          if (ts === undefined || ts === lastRow.get(r.session_id)) continue;
          lastRow.set(r.session_id, ts);
          if (now - t0 > WARMUP_S * 1000) rowLat.push(now - ts);
        }
        await sleep(Math.max(0, o.pollMs - (Date.now() - began)));
      }
    };
    const scorePoll = async () => {
      while (running) {
        const began = Date.now();
        await Promise.all(
          sampled.map(async (id) => {
            let ts: number | undefined;
            if (scoreSource === 'api') {
              const res = await fetch(`${p.apiUrl}/v1/sessions/${id}`, {
                headers: { authorization: `Bearer ${reader.key}` },
              }).catch(() => undefined);
              if (!res || res.status !== 200) {
                await res?.arrayBuffer();
                return;
              }
              const r = scoreTsOf(await res.json());
              ts = r.ts;
              if (!r.capable) scoreSource = 'postgres sessions.last_score_at (the API response had no score field)';
            } else {
              const { rows } = await pool.query<{ t: Date | null }>(
                'SELECT last_score_at AS t FROM sessions WHERE session_id = $1',
                [id],
              );
              ts = rows[0]?.t?.getTime();
            }
            if (ts === undefined || ts === lastScore.get(id)) return;
            const first = !lastScore.has(id);
            lastScore.set(id, ts);
            if (!first) scoreLat.push(Date.now() - ts);
          }),
        );
        await sleep(Math.max(0, o.pollMs - (Date.now() - began)));
      }
    };
    const lag: StepResult['lag'] = [];
    const g = p.groups();
    const projTopics: Record<string, readonly TopicKey[]> = {
      ...Object.fromEntries(Object.values(readModels).map((m) => [m.name, m.topics])),
      redis: redisTopics,
    };
    const lagPoll = async () => {
      while (running) {
        try {
          const ends = new Map<string, number>();
          for (const key of new Set([...fatigueProcessor.inputs, ...Object.values(projTopics).flat()])) {
            const t = p.topics[key as TopicKey];
            ends.set(
              t,
              (await p.admin.fetchTopicOffsets(t)).reduce((n, x) => n + Number(x.high), 0),
            );
          }
          const committed = await p.admin.fetchOffsets({ groupId: g.processor, topics: inputs });
          let proc = 0;
          for (const t of committed) {
            proc += ends.get(t.topic)! - t.partitions.reduce((n, x) => n + Math.max(0, Number(x.offset)), 0);
          }
          const { rows } = await pool.query<{ projection: string; topic: string; s: string }>(
            'SELECT projection, topic, sum(next_offset)::text AS s FROM projection_checkpoints GROUP BY 1, 2',
          );
          const projections: Record<string, number> = {};
          for (const [name, keys] of Object.entries(projTopics)) {
            let behind = 0;
            for (const k of keys) {
              const t = p.topics[k];
              let at = Number(rows.find((r) => r.projection === name && r.topic === t)?.s ?? 0);
              if (name === 'redis') {
                const h = await redis.hgetall(redisKeys(p.config.topicPrefix).checkpoints('redis'));
                at = Object.entries(h)
                  .filter(([f]) => f.startsWith(`${t}:`))
                  .reduce((n, [, v]) => n + Number(v), 0);
              }
              behind += Math.max(0, ends.get(t)! - at);
            }
            projections[name] = behind;
          }
          lag.push({ t: Math.round((Date.now() - t0) / 1000), processor: proc, projections });
        } catch {
          // a sample missed; the next one comes in 2 s
        }
        await sleep(2_000);
      }
    };
    await Promise.all([rowPoll(), scorePoll(), lagPoll()]);
    const loadCode = await loader.exited;
    const wall = (Date.now() - t0) / 1000;
    const published = (await inputsEnd()) - start0;
    sampler.stop();
    const loadOut = /\{"published".*\}/.exec(loader.output())?.[0];
    log(`load exited ${loadCode} after ${wall.toFixed(1)} s: ${loadOut ?? loader.output().slice(-500)}`);
    const perSessionPerS = 35; // eeg 10 + face 15 + vehicle 10 per second, game events on top
    const offered = sessions * seconds * perSessionPerS;
    const row = pcts(rowLat);
    const score = pcts(scoreLat);
    const after = pcts(scoreLat.map((x) => x - LATENESS_MS));
    const crashes = p.crashes.map((c) => `${c.role} exited ${c.code}`);
    const reasons: string[] = [];
    if (!(row.p99 < GOAL_MS)) reasons.push(`row freshness p99 ${row.p99} ms`);
    if (!(after.p99 < GOAL_MS)) reasons.push(`score after window close p99 ${after.p99} ms`);
    if (crashes.length) reasons.push(crashes.join(', '));
    if (loadCode !== 0) reasons.push(`load exited ${loadCode}`);
    if (published < 0.95 * offered) reasons.push(`published ${published} of ~${offered} offered events`);
    const summary = sampler.summary(WARMUP_S);
    const lagMax: Record<string, number> = { processor: Math.max(0, ...lag.map((l) => l.processor)) };
    for (const name of Object.keys(projTopics)) lagMax[name] = Math.max(0, ...lag.map((l) => l.projections[name] ?? 0));
    const result: StepResult = {
      sessions,
      seconds,
      kind,
      passed: reasons.length === 0,
      ...(reasons.length ? { why_not: reasons.join('; ') } : {}),
      events_offered: offered,
      events_published: published,
      // Over the sessions' length (the load process spends its first second or two connecting).
      events_per_s_sustained: Math.round(published / seconds),
      freshness_row_ms: row,
      freshness_score_api_ms: score,
      freshness_score_after_close_ms: after,
      score_source: scoreSource,
      lag,
      lag_max: lagMax,
      cpu_rss: summary,
      cpu_rss_samples: sampler.samples,
      crashes,
    };
    log(
      `${result.passed ? 'PASS' : `FAIL (${result.why_not})`}: ${result.events_per_s_sustained} events/s; row p50/p95/p99 ${row.p50}/${row.p95}/${row.p99} ms; ` +
        `score ${score.p50}/${score.p95}/${score.p99} ms (after close p99 ${after.p99}); lag max ${JSON.stringify(lagMax)}`,
    );
    return result;
  } finally {
    sampler?.stop();
    redis.disconnect();
    await pool.end().catch(() => {});
    await p.close();
    if (o.cpuProf && fs.existsSync(profileDir)) process.stdout.write(`[e2e] CPU profiles in ${profileDir}\n`);
  }
}

export async function e2eBench(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const atStart = machine();
  const steps: StepResult[] = [];
  let best: number | undefined;
  for (const s of o.steps) {
    const r = await runStep(o, s, o.stepSeconds, 'step');
    steps.push(r);
    if (!r.passed) break;
    best = s;
  }
  if (best !== undefined && o.holdSeconds > 0) steps.push(await runStep(o, best, o.holdSeconds, 'hold'));
  const hold = steps.find((s) => s.kind === 'hold');
  const json = {
    machine: { ...atStart, ...versions() },
    loadavg_at_end: os.loadavg().map((l) => Math.round(l * 100) / 100),
    options: o,
    criterion: `freshness p99 under ${GOAL_MS} ms for (a) device ts → row in PostgreSQL and (b) window end → score through the API minus the allowed lateness (${LATENESS_MS} ms); nothing crashed; >= 95% of offered events published`,
    largest_passing_sessions: best ?? null,
    hold_passed: hold ? hold.passed : null,
    steps,
  };
  writeResults('e2e', json, markdown(json));
}

function versions() {
  const pg = (() => {
    try {
      return fs.readdirSync('/usr/lib/postgresql').join(', ');
    } catch {
      return 'unknown';
    }
  })();
  const redisV = (() => {
    try {
      return /v=(\S+)/.exec(execSync('redis-server --version').toString())?.[1];
    } catch {
      return undefined;
    }
  })();
  return { postgresql: `PostgreSQL ${pg} (machine server, no TimescaleDB)`, redis: `Redis ${redisV ?? 'unknown'}` };
}

function markdown(j: {
  machine: Record<string, unknown>;
  loadavg_at_end: number[];
  options: E2eOptions;
  criterion: string;
  largest_passing_sessions: number | null;
  hold_passed: boolean | null;
  steps: StepResult[];
}): string {
  const m = j.machine;
  const f = (p: Pcts) => (p.n ? `${p.p50} / ${p.p95} / ${p.p99}` : 'no samples');
  const roles = [
    'processor',
    'projector',
    'api',
    ...(j.options.via === 'gateway' ? ['gateway'] : []),
    'load',
    'kafka',
    'postgres',
    'redis',
    'bench',
    'machine',
  ];
  return [
    `Machine: ${m.cpus} CPUs (${m.cpu_model}), ${m.memory_gib} GiB, Node ${m.node}, ${m.kafka}, ${m.postgresql}, ${m.redis}; load average at start ${(m.loadavg_at_start as number[]).join(' / ')}, at end ${j.loadavg_at_end.join(' / ')}.`,
    `Load via ${j.options.via}; steps of ${j.options.stepSeconds} s; ${j.options.partitions} partitions; freshness from ${j.options.sample} sampled sessions polled every ${j.options.pollMs} ms (first ${WARMUP_S} s left out).`,
    `Criterion: ${j.criterion}.`,
    '',
    `**Largest S passing: ${j.largest_passing_sessions ?? 'none'}**${j.hold_passed === null ? '' : `; held ${j.options.holdSeconds} s: ${j.hold_passed ? 'passed' : '**failed**'}`}.`,
    '',
    table(
      [
        'S',
        'kind',
        's',
        'events/s',
        '(a) ts → PG row p50/p95/p99 ms',
        '(b) window end → API score p50/p95/p99 ms',
        '(b) after close p99',
        'max lag proc / proj',
        'result',
      ],
      j.steps.map((s) => [
        s.sessions,
        s.kind,
        s.seconds,
        s.events_per_s_sustained,
        f(s.freshness_row_ms),
        f(s.freshness_score_api_ms),
        s.freshness_score_after_close_ms.n ? s.freshness_score_after_close_ms.p99 : '-',
        `${s.lag_max.processor} / ${Math.max(
          0,
          ...Object.entries(s.lag_max)
            .filter(([k]) => k !== 'processor')
            .map(([, v]) => v),
        )}`,
        s.passed ? 'pass' : `fail: ${s.why_not}`,
      ]),
    ),
    '',
    'CPU cores (mean after warm-up) / peak RSS MiB per process; "machine" is the busy cores of the whole 2-core machine, other work included (PostgreSQL RSS sums every backend, shared memory included):',
    '',
    table(
      ['S', 'kind', ...roles],
      j.steps.map((s) => [
        s.sessions,
        s.kind,
        ...roles.map((r) => {
          const x = s.cpu_rss[r];
          if (!x) return '-';
          return r === 'machine' ? `${round(x.cores_mean, 2)}` : `${round(x.cores_mean, 2)} / ${x.rss_max_mib}`;
        }),
      ]),
    ),
    '',
    `Score source: ${[...new Set(j.steps.map((s) => s.score_source))].join('; ')}. (a) is an upper bound (poll interval ${j.options.pollMs} ms) and includes the load's 100 ms send tick; (b) includes the ${LATENESS_MS} ms allowed lateness by design.`,
  ].join('\n');
}
