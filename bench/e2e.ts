import { execSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from 'pg';
import { Redis } from 'ioredis';
import { createApiKey } from '../core/api-keys';
import { loadConfig } from '../core/config';
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
import { ScoreStages, watchScores } from './score-stages';

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
 *   that part is split into stages (bench/score-stages.ts: processor, commit, project, api), the
 *   first two over every session's scores from a read_committed consumer of the scores topic;
 * - consumer lag every 2 s: the processor's group (committed offsets vs input ends) and every
 *   projection (its checkpoint vs the ends of its topics);
 * - CPU and RSS per process every second from /proc: every role, Kafka, the registry, Zipkin,
 *   PostgreSQL, Redis and the harness itself, plus `kernel` (kernel threads and interrupts),
 *   `outside` (every other user-space process on the box), `other` (busy CPU none of them accounts
 *   for) and `steal` (the hypervisor's, counted apart from `machine`).
 * First an idle step (S = 0: every role running, no load) gives the stack's fixed cost (the sum of
 * `stackRoles`: what a deployment runs, not the load, the harness or the kernel); each step's
 * CPU then becomes CPU-µs per event per process, in total and above that fixed cost. A step passes
 * when (a) p99 and (b − lateness) p99 are within `--goal-ms`, the lag of the processor and of every
 * projection did not keep growing over the step's second half (a least-squares line through its
 * samples may add at most one second of input), nothing crashed and at least 95% of the offered
 * events were published. Steps go up until one fails, then S is bisected between the last pass and
 * the first failure down to `--resolution` sessions, and the largest passing S is held for
 * `--hold-seconds` (with its RSS in the first and last minute, to show whether memory stays flat).
 * Each step deletes its topics afterwards, so no step pays for the partitions of the ones before.
 * `--label` writes bench/results/e2e-<label>.{json,md}, to keep a before and an after side by side.
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
  goalMs: number;
  idleSeconds: number;
  resolution: number;
  label?: string;
}

const WARMUP_S = 10;
const LATENESS_MS = fatigueV1.allowedLatenessMs;

function parseArgs(argv: string[]): E2eOptions {
  const o: E2eOptions = {
    via: 'producer',
    steps: [100, 200, 400, 800],
    stepSeconds: 60,
    holdSeconds: 300,
    sample: 20,
    pollMs: 100,
    partitions: 12,
    cpuProf: false,
    goalMs: 500,
    idleSeconds: 40,
    resolution: 25,
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
    else if (a === '--goal-ms') o.goalMs = num(a, argv[++i], 50);
    else if (a === '--idle-seconds') o.idleSeconds = num(a, argv[++i], 0);
    else if (a === '--resolution') o.resolution = num(a, argv[++i]);
    else if (a === '--label') {
      const v = argv[++i] ?? '';
      if (!/^[a-z0-9-]{1,40}$/.test(v)) throw new Error('--label takes 1-40 of a-z, 0-9 and -');
      o.label = v;
    } else
      throw new Error(
        `unknown argument ${a}; usage: npm run bench -- e2e [--via producer|gateway] [--steps 100,200,400,800] [--step-seconds 60] [--hold-seconds 300] [--idle-seconds 40] [--resolution 25] [--goal-ms 500] [--sample 20] [--poll-ms 100] [--partitions 12] [--label before] [--cpu-prof]`,
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
  kind: 'idle' | 'step' | 'hold';
  passed: boolean;
  why_not?: string;
  events_offered: number;
  events_published: number;
  events_per_s_sustained: number;
  freshness_row_ms: Pcts;
  freshness_score_api_ms: Pcts;
  freshness_score_after_close_ms: Pcts;
  /** Where (b) after close goes (bench/score-stages.ts); processor and commit over every session. */
  score_stages_ms?: { processor: Pcts; commit: Pcts; project: Pcts; api: Pcts };
  /** How long one round of the sampled sessions' API reads took (a slow round delays its samples). */
  api_poll_round_ms?: Pcts;
  /**
   * The sampled reads of the API: answers by where their latest score came from (`redis`; `postgres`:
   * Redis did not answer; `none`: no score yet) and refusals by status (`status 429`, ...).
   */
  api_latest_sources?: Record<string, number>;
  score_source: string;
  lag: { t: number; processor: number; projections: Record<string, number> }[];
  lag_max: Record<string, number>;
  /** Fitted lag growth over the step's second half (events), per consumer. */
  lag_growth_second_half: Record<string, number>;
  /** CPU-µs per event per process: total, and above the idle step's fixed cost. */
  cpu_us_per_event?: Record<string, { total: number; above_idle: number }>;
  /** Hold only: peak RSS MiB per role in the first and the last minute after warm-up. */
  rss_first_last_minute_mib?: Record<string, [number, number]>;
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
function scoreTsOf(body: unknown): { capable: boolean; ts?: number; source?: unknown } {
  const b = body as Record<string, unknown> | null;
  if (!b || typeof b !== 'object') return { capable: false };
  const latest = b.latest as Record<string, unknown> | null | undefined;
  const source = latest?.source;
  const scores = b.scores as Record<string, unknown> | null | undefined;
  const capable = 'latest' in b || (!!scores && 'last_at' in scores);
  for (const c of [latest?.ts, scores?.last_at]) {
    if (typeof c === 'number') return { capable, ts: c, source };
    if (typeof c === 'string' && !Number.isNaN(Date.parse(c))) return { capable, ts: Date.parse(c), source };
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

    const listening = (port: number) => [pidListeningOn(port)].filter((x): x is number => !!x);
    const portOf = (url: string | undefined, fallback: number) => Number(url ? new URL(url).port : '') || fallback;
    const fixed: Record<string, number[]> = {
      kafka: listening(Number(p.config.kafka.brokers[0]?.split(':')[1] ?? 9092)),
      redis: pidsByComm('redis-server'),
      registry: listening(portOf(p.config.schemaRegistryUrl, 8081)),
      zipkin: listening(portOf(process.env.VIGIL_ZIPKIN_URL, 9411)),
      bench: [process.pid],
    };
    // PostgreSQL's backends come and go with the roles' connections: looked up at every sample (a
    // list taken here left every later backend out, and their CPU went unnamed).
    sampler = new ProcSampler(() => ({ ...p.pids(), ...fixed, postgres: pidsByComm('postgres') }));
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
    // The idle step runs no load process: it only waits, every role running.
    const loader =
      sessions > 0
        ? p.start('load', [JSON.stringify(load)], {}, { script: path.join(repoRoot(), 'dist', 'bench', 'e2e-load.js') })
        : undefined;
    const t0 = Date.now();
    const stages = sessions > 0 ? new ScoreStages(sampled, LATENESS_MS, t0 + WARMUP_S * 1000) : undefined;
    const stopWatching = stages
      ? await watchScores({
          kafka: p.kafka,
          serde: p.serde,
          topic: p.topics.scores,
          groupId: `${p.config.topicPrefix}.bench.scores`,
          stages,
        })
      : undefined;
    let running = true;
    const loadExited = loader ? loader.exited : sleep(seconds * 1000).then(() => 0);
    void loadExited.then(() => (running = false));

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
    const pollRounds: number[] = [];
    const latestSources: Record<string, number> = {};
    const countAnswer = (what: string) => (latestSources[what] = (latestSources[what] ?? 0) + 1);
    const scorePoll = async () => {
      while (running) {
        const began = Date.now();
        await Promise.all(
          sampled.map(async (id) => {
            let ts: number | undefined;
            if (scoreSource === 'api') {
              const inRedis = Number(await redis.hget(redisKeys(p.config.topicPrefix).latest(load.tenant, id), 'ts'));
              if (inRedis > 0) stages?.seenInRedis(id, inRedis, Date.now());
              const res = await fetch(`${p.apiUrl}/v1/sessions/${id}`, {
                headers: { authorization: `Bearer ${reader.key}` },
              }).catch(() => undefined);
              if (!res || res.status !== 200) {
                countAnswer(`status ${res?.status ?? 'none'}`);
                await res?.arrayBuffer();
                return;
              }
              const r = scoreTsOf(await res.json());
              ts = r.ts;
              countAnswer(String(r.source ?? 'none'));
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
            const seenAt = Date.now();
            if (first) return;
            scoreLat.push(seenAt - ts);
            stages?.seenThroughApi(id, ts, seenAt);
          }),
        );
        if (began - t0 > WARMUP_S * 1000) pollRounds.push(Date.now() - began);
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
    await stopWatching?.();
    const loadCode = await loadExited;
    const wall = (Date.now() - t0) / 1000;
    const published = (await inputsEnd()) - start0;
    sampler.stop();
    const loadOutput = loader?.output() ?? '';
    const loadOut = /\{"published".*\}/.exec(loadOutput)?.[0];
    log(`load exited ${loadCode} after ${wall.toFixed(1)} s: ${loadOut ?? loadOutput.slice(-500)}`);
    const perSessionPerS = 35; // eeg 10 + face 15 + vehicle 10 per second, game events on top
    const offered = sessions * seconds * perSessionPerS;
    const row = pcts(rowLat);
    const score = pcts(scoreLat);
    const after = pcts(scoreLat.map((x) => x - LATENESS_MS));
    const crashes = p.crashes.map((c) => `${c.role} exited ${c.code}`);
    const eventsPerS = Math.round(published / seconds);
    const lagMax: Record<string, number> = { processor: Math.max(0, ...lag.map((l) => l.processor)) };
    for (const name of Object.keys(projTopics)) lagMax[name] = Math.max(0, ...lag.map((l) => l.projections[name] ?? 0));
    const growth: Record<string, number> = {};
    const secondHalf = lag.filter((l) => l.t >= seconds / 2);
    for (const name of Object.keys(lagMax)) {
      const ys = secondHalf.map((l) => (name === 'processor' ? l.processor : (l.projections[name] ?? 0)));
      growth[name] = Math.round(
        slope(
          secondHalf.map((l) => l.t),
          ys,
        ) *
          (seconds / 2),
      );
    }
    const reasons: string[] = [];
    if (sessions > 0) {
      if (!(row.p99 <= o.goalMs)) reasons.push(`row freshness p99 ${row.p99} ms`);
      if (!(after.p99 <= o.goalMs)) reasons.push(`score after window close p99 ${after.p99} ms`);
      if (published < 0.95 * offered) reasons.push(`published ${published} of ~${offered} offered events`);
      // More than a second of input piled up over the second half: the step was not keeping up.
      const allowed = Math.max(1_000, eventsPerS);
      for (const [name, g] of Object.entries(growth))
        if (g > allowed) reasons.push(`${name} lag grew by ${g} events over the second half`);
    }
    if (crashes.length) reasons.push(crashes.join(', '));
    if (loadCode !== 0) reasons.push(`load exited ${loadCode}`);
    const summary = sampler.summary(WARMUP_S);
    const minute = (from: number, to: number) => sampler!.summary(from, to);
    const rssFirstLast =
      kind === 'hold' && seconds >= WARMUP_S + 120
        ? Object.fromEntries(
            Object.entries(minute(WARMUP_S, WARMUP_S + 60)).map(([n, x]) => [
              n,
              [x.rss_max_mib, minute(seconds - 60, Infinity)[n]?.rss_max_mib ?? 0] as [number, number],
            ]),
          )
        : undefined;
    const result: StepResult = {
      sessions,
      seconds,
      kind,
      passed: reasons.length === 0,
      ...(reasons.length ? { why_not: reasons.join('; ') } : {}),
      events_offered: offered,
      events_published: published,
      // Over the sessions' length (the load process spends its first second or two connecting).
      events_per_s_sustained: eventsPerS,
      freshness_row_ms: row,
      freshness_score_api_ms: score,
      freshness_score_after_close_ms: after,
      ...(stages
        ? {
            score_stages_ms: {
              processor: pcts(stages.all.processor),
              commit: pcts(stages.all.commit),
              project: pcts(stages.all.project),
              api: pcts(stages.all.api),
            },
            api_poll_round_ms: pcts(pollRounds),
            api_latest_sources: latestSources,
          }
        : {}),
      score_source: scoreSource,
      lag,
      lag_max: lagMax,
      lag_growth_second_half: growth,
      ...(rssFirstLast ? { rss_first_last_minute_mib: rssFirstLast } : {}),
      cpu_rss: summary,
      cpu_rss_samples: sampler.samples,
      crashes,
    };
    log(
      `${result.passed ? 'PASS' : `FAIL (${result.why_not})`}: ${result.events_per_s_sustained} events/s; row p50/p95/p99 ${row.p50}/${row.p95}/${row.p99} ms; ` +
        `score ${score.p50}/${score.p95}/${score.p99} ms (after close p99 ${after.p99}${stagesLine(result)}); lag max ${JSON.stringify(lagMax)}`,
    );
    return result;
  } finally {
    sampler?.stop();
    redis.disconnect();
    await pool.end().catch(() => {});
    p.keepOutputs(path.join('bench-logs', `e2e-S${sessions}`));
    await p.close({ deleteTopics: true });
    if (o.cpuProf && fs.existsSync(profileDir)) process.stdout.write(`[e2e] CPU profiles in ${profileDir}\n`);
  }
}

/** ` = processor a/b + commit c/d + project e/f + api g/h` (p50/p99 ms of each stage), or nothing. */
function stagesLine(s: StepResult): string {
  const st = s.score_stages_ms;
  if (!st) return '';
  const f = (x: Pcts) => `${x.p50}/${x.p99}`;
  return ` = processor ${f(st.processor)} + commit ${f(st.commit)} + project ${f(st.project)} + api ${f(st.api)}`;
}

/** Least-squares slope of ys over xs (units of y per unit of x); 0 with fewer than 2 points. */
export function slope(xs: number[], ys: number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return 0;
  const mx = xs.slice(0, n).reduce((a, b) => a + b, 0) / n;
  const my = ys.slice(0, n).reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * The next S to try after the steps so far: the next planned step while every step passed, then the
 * midpoint between the largest pass and the smallest failure until they are `resolution` apart.
 */
export function nextSessions(planned: number[], tried: { sessions: number; passed: boolean }[], resolution: number) {
  const passes = tried.filter((t) => t.passed).map((t) => t.sessions);
  const fails = tried.filter((t) => !t.passed).map((t) => t.sessions);
  const best = passes.length ? Math.max(...passes) : 0;
  if (!fails.length) return planned.find((s) => s > best);
  const worst = Math.min(...fails);
  if (worst - best <= resolution) return undefined;
  const mid = Math.round((best + worst) / 2 / resolution) * resolution;
  return mid > best && mid < worst ? mid : undefined;
}

/** CPU-µs per event per process, in total and above the idle step's cores. */
function perEvent(step: StepResult, idle: StepResult | undefined): StepResult['cpu_us_per_event'] {
  if (step.events_per_s_sustained <= 0) return undefined;
  const out: NonNullable<StepResult['cpu_us_per_event']> = {};
  for (const [name, x] of Object.entries(step.cpu_rss)) {
    const base = idle?.cpu_rss[name]?.cores_mean ?? 0;
    out[name] = {
      total: Math.round((x.cores_mean * 1e6) / step.events_per_s_sustained),
      above_idle: Math.round((Math.max(0, x.cores_mean - base) * 1e6) / step.events_per_s_sustained),
    };
  }
  return out;
}

export async function e2eBench(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const atStart = machine();
  const steps: StepResult[] = [];
  const idle = o.idleSeconds > 0 ? await runStep(o, 0, o.idleSeconds, 'idle') : undefined;
  if (idle) steps.push(idle);
  const tried: StepResult[] = [];
  for (
    let s = nextSessions(o.steps, tried, o.resolution);
    s !== undefined;
    s = nextSessions(o.steps, tried, o.resolution)
  ) {
    const r = await runStep(o, s, o.stepSeconds, 'step');
    r.cpu_us_per_event = perEvent(r, idle);
    tried.push(r);
    steps.push(r);
  }
  const passing = tried.filter((t) => t.passed).map((t) => t.sessions);
  const best = passing.length ? Math.max(...passing) : undefined;
  if (best !== undefined && o.holdSeconds > 0) {
    const h = await runStep(o, best, o.holdSeconds, 'hold');
    h.cpu_us_per_event = perEvent(h, idle);
    steps.push(h);
  }
  const hold = steps.find((s) => s.kind === 'hold');
  const json = {
    machine: { ...atStart, postgresql: await databaseServer(), redis: redisVersion() },
    loadavg_at_end: os.loadavg().map((l) => Math.round(l * 100) / 100),
    options: o,
    criterion: `freshness p99 within ${o.goalMs} ms for (a) device ts → row in PostgreSQL and (b) window end → score through the API minus the allowed lateness (${LATENESS_MS} ms); no consumer's lag grew by more than one second of input over the step's second half; nothing crashed; >= 95% of offered events published`,
    idle_cores: idle ? Object.fromEntries(Object.entries(idle.cpu_rss).map(([n, x]) => [n, x.cores_mean])) : null,
    largest_passing_sessions: best ?? null,
    hold_passed: hold ? hold.passed : null,
    steps,
  };
  writeResults(o.label ? `e2e-${o.label}` : 'e2e', json, markdown(json));
}

/** What the database server is: its version and whether TimescaleDB is preloaded there (the read models' path). */
async function databaseServer(): Promise<string> {
  const databaseUrl = loadConfig(process.env).database.url;
  const pool = new Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const { rows } = await pool.query<{ v: string; ts: string | null; preload: string }>(
      `SELECT current_setting('server_version') AS v,
              (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS ts,
              current_setting('shared_preload_libraries') AS preload`,
    );
    const r = rows[0]!;
    const url = new URL(databaseUrl);
    const timescale =
      r.ts && r.preload.includes('timescaledb') ? `TimescaleDB ${r.ts} preloaded` : 'no TimescaleDB (plain tables)';
    return `PostgreSQL ${r.v} at ${url.host}, ${timescale}`;
  } catch (err) {
    return `PostgreSQL (unreadable: ${(err as Error).message})`;
  } finally {
    await pool.end().catch(() => {});
  }
}

function redisVersion(): string {
  try {
    return `Redis ${/v=(\S+)/.exec(execSync('redis-server --version').toString())?.[1] ?? 'unknown'}`;
  } catch {
    return 'Redis unknown';
  }
}

/**
 * The stack's processes: what a deployment runs (the roles, Kafka, the registry, Zipkin, PostgreSQL,
 * Redis), without the load, the harness, the kernel's threads and whatever else runs on the box.
 */
export function stackRoles(via: E2eOptions['via']): string[] {
  return [
    'processor',
    'projector',
    'api',
    ...(via === 'gateway' ? ['gateway'] : []),
    'kafka',
    'registry',
    'zipkin',
    'postgres',
    'redis',
  ];
}

/** The idle step's cores: the stack's own (the issue's fixed cost) and the rest of the machine's. */
export function idleSentence(idle: Record<string, number>, via: E2eOptions['via']): string {
  const hundredths = (n: number) => Math.round(n * 100) / 100;
  const stack = hundredths(stackRoles(via).reduce((n, r) => n + (idle[r] ?? 0), 0));
  const part = (name: string) => `${name} ${hundredths(idle[name] ?? 0)}`;
  return `**${stack} cores** for the stack's processes, of **${idle.machine} cores** busy on the machine (${['bench', 'kernel', 'outside', 'other'].map(part).join(', ')})`;
}

function markdown(j: {
  machine: Record<string, unknown>;
  loadavg_at_end: number[];
  options: E2eOptions;
  criterion: string;
  idle_cores: Record<string, number> | null;
  largest_passing_sessions: number | null;
  hold_passed: boolean | null;
  steps: StepResult[];
}): string {
  const m = j.machine;
  const f = (p: Pcts) => (p.n ? `${p.p50} / ${p.p95} / ${p.p99}` : '-');
  const roles = [...stackRoles(j.options.via), 'load', 'bench', 'kernel', 'outside', 'other'];
  const loaded = j.steps.filter((s) => s.cpu_us_per_event);
  const hold = j.steps.find((s) => s.rss_first_last_minute_mib);
  return [
    `Machine: ${m.cpus} CPUs (${m.cpu_model}), ${m.memory_gib} GiB, Node ${m.node}, ${m.kafka}, ${m.postgresql}, ${m.redis}; load average at start ${(m.loadavg_at_start as number[]).join(' / ')}, at end ${j.loadavg_at_end.join(' / ')}.`,
    `Load via ${j.options.via}; idle step ${j.options.idleSeconds} s, steps of ${j.options.stepSeconds} s bisected to ${j.options.resolution} sessions; ${j.options.partitions} partitions; freshness from ${j.options.sample} sampled sessions polled every ${j.options.pollMs} ms (first ${WARMUP_S} s left out).`,
    `Criterion: ${j.criterion}.`,
    '',
    `**Largest S passing: ${j.largest_passing_sessions ?? 'none'}**${j.hold_passed === null ? '' : `; held ${j.options.holdSeconds} s: ${j.hold_passed ? 'passed' : '**failed**'}`}.` +
      (j.idle_cores ? ` Idle (every role running, S = 0): ${idleSentence(j.idle_cores, j.options.via)}.` : ''),
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
        'lag growth 2nd half proc / proj',
        'result',
      ],
      j.steps.map((s) => {
        const projMax = (r: Record<string, number>) =>
          Math.max(
            0,
            ...Object.entries(r)
              .filter(([k]) => k !== 'processor')
              .map(([, v]) => v),
          );
        return [
          s.sessions,
          s.kind,
          s.seconds,
          s.events_per_s_sustained,
          f(s.freshness_row_ms),
          f(s.freshness_score_api_ms),
          s.freshness_score_after_close_ms.n ? s.freshness_score_after_close_ms.p99 : '-',
          `${s.lag_max.processor} / ${projMax(s.lag_max)}`,
          `${s.lag_growth_second_half.processor ?? 0} / ${projMax(s.lag_growth_second_half)}`,
          s.passed ? 'pass' : `fail: ${s.why_not}`,
        ];
      }),
    ),
    ...(j.steps.some((s) => s.score_stages_ms)
      ? [
          '',
          "(b) after close by stage, p50 / p95 / p99 ms (bench/score-stages.ts): processor = the score record's timestamp (its commit began) − window close, every session; commit = seen by a read_committed consumer − that timestamp, every session; project = seen in Redis − seen in Kafka and api = seen through the API − seen in Redis, sampled sessions (both hold up to one poll interval):",
          '',
          table(
            ['S', 'kind', 'scores', 'processor', 'commit', 'project', 'api', 'API poll round'],
            j.steps
              .filter((s) => s.score_stages_ms)
              .map((s) => {
                const st = s.score_stages_ms!;
                const round_ = s.api_poll_round_ms;
                return [
                  s.sessions,
                  s.kind,
                  st.processor.n,
                  f(st.processor),
                  f(st.commit),
                  f(st.project),
                  f(st.api),
                  round_ ? f(round_) : '-',
                ];
              }),
          ),
        ]
      : []),
    '',
    'CPU cores (mean after warm-up) / peak RSS MiB per process. "machine" is the busy cores of the whole 2-core machine without steal; "kernel" its kernel threads and interrupts, "outside" user-space processes outside the stack and the bench, "other" what none of them accounts for; "steal" is the hypervisor\'s (PostgreSQL RSS sums every backend, shared memory included):',
    '',
    table(
      ['S', 'kind', ...roles, 'machine', 'steal'],
      j.steps.map((s) => [
        s.sessions,
        s.kind,
        ...roles.map((r) => {
          const x = s.cpu_rss[r];
          if (!x) return '-';
          return ['kernel', 'outside', 'other'].includes(r)
            ? `${round(x.cores_mean, 2)}`
            : `${round(x.cores_mean, 2)} / ${x.rss_max_mib}`;
        }),
        s.cpu_rss.machine ? `${round(s.cpu_rss.machine.cores_mean, 2)}` : '-',
        s.cpu_rss.steal ? `${round(s.cpu_rss.steal.cores_mean, 2)}` : '-',
      ]),
    ),
    '',
    'CPU-µs per event per process, total / above the idle step (what one more event costs):',
    '',
    table(
      ['S', 'kind', ...roles, 'machine'],
      loaded.map((s) => [
        s.sessions,
        s.kind,
        ...[...roles, 'machine'].map((r) => {
          const x = s.cpu_us_per_event?.[r];
          return x ? `${x.total} / ${x.above_idle}` : '-';
        }),
      ]),
    ),
    ...(hold?.rss_first_last_minute_mib
      ? [
          '',
          `Memory over the ${hold.seconds} s hold at S = ${hold.sessions}, peak RSS MiB in the first / last minute after warm-up: ` +
            Object.entries(hold.rss_first_last_minute_mib)
              .filter(([n]) => ['processor', 'projector', 'api', 'gateway', 'load'].includes(n))
              .map(([n, [a, b]]) => `${n} ${a} / ${b}`)
              .join('; ') +
            '.',
        ]
      : []),
    '',
    `Score source: ${[...new Set(j.steps.map((s) => s.score_source))].join('; ')}. (a) is an upper bound (poll interval ${j.options.pollMs} ms) and includes the load's 100 ms send tick; (b) includes the ${LATENESS_MS} ms allowed lateness by design.`,
  ].join('\n');
}
