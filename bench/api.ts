import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { createApiKey } from '../core/api-keys';
import { repoRoot } from '../core/paths';
import { projectRedis, defaultRedisModelOptions } from '../projections/redis/model';
import { redisScripts } from '../projections/redis/scripts';
import type { FatigueScored } from '../schemas/types';
import { summariseProfiles, type ProfileSummary } from './cpu-profile';
import { machine, peakRssMiB, round, spread, table, writeResults, type Spread } from './lib';
import { Pipeline, freePort, sleep, type Role } from './pipeline';
import { compareBucketQueries, describeDatabase } from './database';
import { CLK_TCK, ProcSampler, machineBusyTicks, pidListeningOn, pidsByComm, rssMiB } from './procstat';

/**
 * `npm run bench -- api [--seconds n] [--runs n] [--connections n] [--zipkin <url>] [--cpu-prof]`:
 * the query API under autocannon, against a bare `node:http` handler answering the same bytes.
 *
 * Set-up (Pipeline): own topics, a fresh migrated database, every schema registered. Seeded directly
 * (no pipeline needed): tenant `bench-api` with one reader key; session `bench-api-long` with 24 h of
 * scores (one per 5 s: 17,280 rows) and its latest score in Redis written by the Redis read model's own
 * operation (projectRedis + its Lua script); 200 more sessions of 2 h of scores each (288,000 rows) so
 * the table and its index are not just the one session.
 *
 * Servers, each its own process: `vigil api` with VIGIL_TRACING=off, `vigil api` with VIGIL_TRACING=on
 * (Zipkin exporter to a counting sink by default, `--zipkin <url>` for a real Zipkin: the local one
 * keeps spans in a 256 MB heap, which a run at thousands of spans/s fills), both with
 * VIGIL_API_RATE_PER_MIN=10000000 and VIGIL_API_ADDRESS_RATE_PER_MIN=100000000 (the maxima: the limiters
 * count every request, in process far from the limit and in Redis near it, but never refuse; with the
 * default address limit of 6,000 a minute, part of a run was answered 429), and the bare handler
 * (bench/api-servers.ts) answering the API's own cached-detail bytes, captured in this run.
 *
 * Requests: `cached detail` = GET /v1/sessions/bench-api-long (session row from PostgreSQL, latest
 * score from Redis on every request, the row reused in process for VIGIL_API_DETAIL_CACHE_MS, default 100 ms); `scores 24h 1m` = GET /v1/sessions/bench-api-long/scores?from&to&bucket=1m over
 * the 24 h (1,440 buckets from 17,280 rows: from the continuous aggregate on TimescaleDB, by date_bin on
 * plain PostgreSQL; nothing cached). On TimescaleDB the run also times that query both ways in-process
 * (`compareBucketQueries`, bench/database.ts); `bare` = the
 * bare handler. Closed loop: autocannon in this process, CONNECTIONS connections, pipelining 1.
 *
 * Phases: (a) idle: RUNS rounds of every target, SECONDS each, the order rotated each round; plus one
 * raw 24 h scores run (17,280 rows, tracing off) for scale. (b) load: the same while `vigil simulate
 * --sessions 200 --speed realtime` runs with `vigil process` and `vigil project` on the same topics,
 * database and Redis. Meanwhile CPU and RSS of every process each second (/proc), peak RSS (VmHWM) at
 * the end, and in (b) what the pipeline ingested and how far the processor lagged.
 */
const TENANT = 'bench-api';
const LONG = 'bench-api-long';
const OTHER_SESSIONS = 200;
const OTHER_SPAN_H = 2;
const SIM_SESSIONS = 200;
const SETTLE_MS = 1_000;
const WARMUP_S = 2;
const GOAL_RPS = 2_000;
const GOAL_P99_MS = 50;
const GOAL_TRACING_RATIO = 0.75;
const DAY_MS = 24 * 3_600_000;

interface Options {
  seconds: number;
  runs: number;
  connections: number;
  zipkin?: string;
  cpuProf: boolean;
  /** Only the cached-detail targets (bare, API tracing off and on): a profile of the read path alone. */
  cachedOnly: boolean;
  /** VIGIL_TRACE_SAMPLE_RATIO of the tracing-on API (new traces sampled; 1: every request). */
  sampleRatio: number;
  /** No pipeline and no load phase: a quick A/B of the servers alone (about a third of the time). */
  idleOnly: boolean;
  /**
   * New API processes (tracing off and on) before every round, each warmed up again: one process's
   * CPU per request stays within a few % over its runs, while two processes of the same build have
   * differed by half (0.20 and 0.31 ms per cached read, one bench after the other), so paired runs
   * against one process each measure that process's luck as much as the build.
   */
  freshServers: boolean;
}

function options(argv: string[]): Options {
  const o: Options = {
    seconds: Number(process.env.VIGIL_BENCH_API_SECONDS ?? 6),
    runs: Number(process.env.VIGIL_BENCH_API_RUNS ?? 3),
    connections: Number(process.env.VIGIL_BENCH_API_CONNECTIONS ?? 16),
    cpuProf: false,
    cachedOnly: false,
    sampleRatio: 1,
    idleOnly: false,
    freshServers: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--runs') o.runs = Number(next());
    else if (a === '--connections') o.connections = Number(next());
    else if (a === '--zipkin') o.zipkin = next();
    else if (a === '--cpu-prof') o.cpuProf = true;
    else if (a === '--cached-only') o.cachedOnly = true;
    else if (a === '--sample-ratio') o.sampleRatio = Number(next());
    else if (a === '--idle-only') o.idleOnly = true;
    else if (a === '--fresh-servers') o.freshServers = true;
    else
      throw new Error(
        `unknown option ${a}; use --seconds n --runs n --connections n --zipkin <url> --cpu-prof --cached-only --sample-ratio r --idle-only --fresh-servers`,
      );
  }
  for (const k of ['seconds', 'runs', 'connections'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`--${k} must be a positive integer`);
  }
  if (!(o.sampleRatio >= 0 && o.sampleRatio <= 1)) throw new Error('--sample-ratio must be a number from 0 to 1');
  return o;
}

type Server = 'bare' | 'api tracing off' | 'api tracing on';
type Query = 'cached detail' | 'scores 24h 1m' | 'scores 24h raw';

interface Target {
  name: string;
  server: Server;
  query: Query;
  path: string;
}

interface Measurement {
  phase: 'warm-up' | 'idle' | 'load';
  run: number;
  target: string;
  server: Server;
  query: Query;
  seconds: number;
  requests_2xx: number;
  non_2xx: number;
  errors: number;
  requests_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  bytes_per_response: number;
  /** CPU cores used by each process over the measurement (mean of 1 s samples). */
  cores: Record<string, number>;
  /** CPU cores the whole machine used meanwhile (/proc/stat), this run's processes and everyone else's. */
  machine_busy_cores: number;
}

export async function apiBench(argv: string[]): Promise<void> {
  const o = options(argv);
  const atStart = machine();
  const log = (s: string) => process.stdout.write(`[api] ${s}\n`);
  const t0 = performance.now();
  const p = await Pipeline.create({ name: 'bench-api' });
  const redis = new Redis(p.config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 });
  const pool = new Pool({ connectionString: p.db.url, max: 2 });
  pool.on('error', (err) => log(`bench pool: ${err.message}`));
  const profileRoot = path.join(repoRoot(), '.local', 'profiles', p.config.topicPrefix);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-api-'));
  let sampler: ProcSampler | undefined;
  try {
    const seeded = await seed(pool, redis, p.config.topicPrefix);
    const { key } = await createApiKey(pool, { tenantId: TENANT, role: 'reader', label: 'api bench' });
    log(`seeded ${seeded.rows} score rows in ${Math.round(seeded.ms)} ms (${p.config.topicPrefix})`);
    // The database this run is on, and the 24 h bucketed query both ways (TimescaleDB: the continuous
    // aggregate refreshed over the seeded range first, as its refresh policy keeps it, vs date_bin).
    const database = await describeDatabase(pool);
    if (database.timescale) await pool.query(`CALL refresh_continuous_aggregate('fatigue_scores_1m', NULL, NULL)`);
    const bucketQuery = database.timescale
      ? await compareBucketQueries(pool, {
          sessionId: LONG,
          tenantId: TENANT,
          from: new Date(seeded.longFrom),
          to: new Date(seeded.longFrom + DAY_MS),
          bucket: '1m',
        })
      : null;
    if (bucketQuery)
      log(
        `24 h 1m buckets: continuous aggregate ${bucketQuery.cagg_ms.median} ms, date_bin ${bucketQuery.date_bin_ms.median} ms (same answer: ${bucketQuery.same_answer})`,
      );

    const script = (name: string) => path.join(repoRoot(), 'dist', 'bench', `${name}.js`);
    const sinkPort = await freePort();
    let sinkUrl = o.zipkin;
    if (!sinkUrl) {
      p.start('sink', ['sink', String(sinkPort)], {}, { script: script('api-servers') });
      sinkUrl = `http://127.0.0.1:${sinkPort}/api/v2/spans`;
      await p.waitHttp(`http://127.0.0.1:${sinkPort}/count`, 'sink');
    }
    const apiEnv = {
      VIGIL_API_RATE_PER_MIN: '10000000',
      VIGIL_API_ADDRESS_RATE_PER_MIN: '100000000',
      VIGIL_LOG_LEVEL: 'warn',
    };
    const apis: Record<'api tracing off' | 'api tracing on', string> = {
      'api tracing off': '',
      'api tracing on': '',
    };
    for (const [server, tracing] of [
      ['api tracing off', 'off'],
      ['api tracing on', 'on'],
    ] as const) {
      const port = await freePort();
      const role = roleOf(server);
      const nodeArgs = o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileRoot, role)}`] : [];
      p.start(
        role,
        ['api'],
        {
          ...apiEnv,
          VIGIL_API_PORT: String(port),
          VIGIL_TRACING: tracing,
          ...(tracing === 'on' ? { VIGIL_ZIPKIN_URL: sinkUrl, VIGIL_TRACE_SAMPLE_RATIO: String(o.sampleRatio) } : {}),
        },
        { nodeArgs },
      );
      apis[server] = `http://127.0.0.1:${port}`;
      await p.waitHttp(`${apis[server]}/health/live`, role);
    }

    // The cached detail as the API answers it: the bare handler serves exactly these bytes.
    const detailPath = `/v1/sessions/${LONG}`;
    const detail = await fetchChecked(`${apis['api tracing off']}${detailPath}`, key);
    const detailJson = JSON.parse(detail.toString('utf8')) as { latest?: { source?: string } };
    if (detailJson.latest?.source !== 'redis') throw new Error(`detail not served from Redis: ${detail.toString()}`);
    const detailFile = path.join(tmp, 'detail.json');
    fs.writeFileSync(detailFile, detail);
    const barePort = await freePort();
    p.start('bare', ['bare', String(barePort), detailFile], {}, { script: script('api-servers') });
    const bareUrl = `http://127.0.0.1:${barePort}`;
    await p.waitHttp(bareUrl, 'bare');
    const bareBytes = await fetchChecked(bareUrl + detailPath, key);
    const tracedBytes = await fetchChecked(`${apis['api tracing on']}${detailPath}`, key);

    const range = `from=${new Date(seeded.longFrom).toISOString()}&to=${new Date(seeded.longFrom + DAY_MS).toISOString()}`;
    const scores1m = `/v1/sessions/${LONG}/scores?${range}&bucket=1m`;
    const scoresRaw = `/v1/sessions/${LONG}/scores?${range}&bucket=raw`;
    const check1m = JSON.parse((await fetchChecked(apis['api tracing off'] + scores1m, key)).toString()) as {
      scores: { count: number }[];
    };
    const checkRaw = JSON.parse((await fetchChecked(apis['api tracing off'] + scoresRaw, key)).toString()) as {
      scores: unknown[];
    };
    const answers = {
      detail_bytes: detail.length,
      bare_same_bytes: bareBytes.equals(detail),
      tracing_on_same_bytes: tracedBytes.equals(detail),
      scores_1m_buckets: check1m.scores.length,
      scores_1m_rows: check1m.scores.reduce((n, b) => n + b.count, 0),
      scores_raw_rows: checkRaw.scores.length,
    };
    log(`answers: ${JSON.stringify(answers)}`);

    const targets: Target[] = [
      { name: 'bare: cached detail bytes', server: 'bare', query: 'cached detail', path: detailPath },
      { name: 'api off: cached detail', server: 'api tracing off', query: 'cached detail', path: detailPath },
      { name: 'api on: cached detail', server: 'api tracing on', query: 'cached detail', path: detailPath },
      { name: 'api off: scores 24h 1m', server: 'api tracing off', query: 'scores 24h 1m', path: scores1m },
      { name: 'api on: scores 24h 1m', server: 'api tracing on', query: 'scores 24h 1m', path: scores1m },
    ].filter((t) => !o.cachedOnly || t.query === 'cached detail') as Target[];
    const rawTarget: Target = {
      name: 'api off: scores 24h raw',
      server: 'api tracing off',
      query: 'scores 24h raw',
      path: scoresRaw,
    };
    const urlOf = (s: Server) => (s === 'bare' ? bareUrl : apis[s]);
    const restartApis = async () => {
      for (const server of ['api tracing off', 'api tracing on'] as const) {
        await p.kill(roleOf(server), 'SIGTERM');
        p.restart(roleOf(server));
        await p.waitHttp(`${apis[server]}/health/live`, roleOf(server));
      }
      for (const t of targets.filter((x) => x.server !== 'bare')) await measure('warm-up', 0, t, WARMUP_S);
    };

    const brokerPort = Number(p.config.kafka.brokers[0]?.split(':')[1] ?? 9092);
    const fixed: Record<string, number[]> = {
      bench: [process.pid],
      kafka: [pidListeningOn(brokerPort)].filter((x): x is number => !!x),
      redis: pidsByComm('redis-server'),
    };
    // PostgreSQL backends come and go (pools connect lazily): looked up at every sample.
    sampler = new ProcSampler(() => ({ ...p.pids(), ...fixed, postgres: pidsByComm('postgres') }));
    sampler.start();
    const spans = async () =>
      o.zipkin ? NaN : Number(await (await fetch(`http://127.0.0.1:${sinkPort}/count`)).text());

    const measurements: Measurement[] = [];
    const measure = async (phase: Measurement['phase'], run: number, t: Target, seconds: number) => {
      await sleep(SETTLE_MS);
      const from = sampler!.elapsed();
      const busy0 = machineBusyTicks();
      const r = await autocannon({
        url: urlOf(t.server) + t.path,
        connections: o.connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
        headers: { authorization: `Bearer ${key}` },
      });
      const to = sampler!.elapsed();
      const machineBusy = round((machineBusyTicks() - busy0) / CLK_TCK / (to - from), 2);
      // Samples cover the second before them: those taken from 1 s after the start to the end.
      const cores = Object.fromEntries(
        Object.entries(sampler!.summary(from + 1, to + 0.01)).map(([n, s]) => [n, s.cores_mean]),
      );
      const m: Measurement = {
        phase,
        run,
        target: t.name,
        server: t.server,
        query: t.query,
        seconds: r.duration,
        requests_2xx: r['2xx'],
        non_2xx: r.non2xx,
        errors: r.errors,
        requests_per_s: round(r['2xx'] / r.duration),
        latency_ms: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
        bytes_per_response: r['2xx'] ? Math.round(r.throughput.total / (r['2xx'] + r.non2xx)) : 0,
        cores,
        machine_busy_cores: machineBusy,
      };
      measurements.push(m);
      log(
        `${phase.padEnd(7)} ${String(run).padEnd(2)} ${t.name.padEnd(26)} ${Math.round(m.requests_per_s)} req/s, ` +
          `p50 ${m.latency_ms.p50} p99 ${m.latency_ms.p99} ms, non-2xx ${m.non_2xx}, errors ${m.errors}`,
      );
      return m;
    };
    // Spans the tracing-on API exported per request it answered, over a whole phase (the batch span
    // processor exports every 5 s or per 512 spans, so per-run counts would be off at the edges).
    const spansPerRequest: Record<string, number> = {};
    const rounds = async (phase: 'idle' | 'load') => {
      const before = await spans();
      const n0 = measurements.length;
      for (let run = 0; run < o.runs; run++) {
        if (o.freshServers && run > 0) await restartApis();
        // Rotated order: no target always runs first (after the idle gap) or last.
        const order = targets.map((_, i) => targets[(i + run) % targets.length]!);
        for (const t of order) await measure(phase, run, t, o.seconds);
      }
      if (!o.zipkin) {
        await sleep(5_500);
        const answered = measurements
          .slice(n0)
          .filter((m) => m.server === 'api tracing on')
          .reduce((n, m) => n + m.requests_2xx + m.non_2xx, 0);
        spansPerRequest[phase] = round(((await spans()) - before) / Math.max(1, answered), 2);
        log(`${phase}: ${spansPerRequest[phase]} spans exported per tracing-on request`);
      }
    };

    const phaseWindows: Record<string, { from: number; to: number }> = {};
    for (const t of targets) await measure('warm-up', 0, t, WARMUP_S);
    phaseWindows.idle = { from: sampler.elapsed(), to: NaN };
    await rounds('idle');
    if (!o.cachedOnly) await measure('idle', 0, rawTarget, o.seconds);
    phaseWindows.idle.to = sampler.elapsed();
    const idleDone = performance.now();

    let ingest: Record<string, unknown> | null = null;
    if (!o.idleOnly) {
      // (b) The pipeline: processor and projection worker first, then 200 sessions in real time.
      await p.startWorkers();
      const inputs = [p.topics.sessions, p.topics.eeg, p.topics.face, p.topics.vehicle, p.topics.game];
      const simStart = Date.now();
      p.start('simulate', [
        'simulate',
        '--sessions',
        String(SIM_SESSIONS),
        '--speed',
        'realtime',
        '--duration',
        '30m',
        '--tenant',
        TENANT,
        '--seed',
        '7',
      ]);
      const firstScore = await waitFor(async () => {
        const { rows } = await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM fatigue_scores WHERE tenant_id = $1 AND ts > $2`,
          [TENANT, new Date(simStart - 60_000)],
        );
        return Number(rows[0]!.n) > 0;
      }, 90_000);
      log(
        `pipeline up; first simulated score projected ${Math.round((Date.now() - simStart) / 1000)} s after the start`,
      );
      await sleep(3_000);
      const ingestBefore = await ingestState(p, inputs, pool, simStart);
      phaseWindows.load = { from: sampler.elapsed(), to: NaN };
      await rounds('load');
      phaseWindows.load.to = sampler.elapsed();
      const ingestAfter = await ingestState(p, inputs, pool, simStart);
      const loadSeconds = phaseWindows.load.to - phaseWindows.load.from;
      const sameBytesAfterLoad = (await fetchChecked(apis['api tracing off'] + detailPath, key)).equals(detail);
      ingest = {
        simulated_sessions: SIM_SESSIONS,
        first_score_after_s: firstScore ? round((firstScore - simStart) / 1000, 2) : null,
        input_events_per_s: round((ingestAfter.inputEnd - ingestBefore.inputEnd) / loadSeconds),
        scores_projected_per_s: round((ingestAfter.scores - ingestBefore.scores) / loadSeconds),
        processor_lag_records_at_end: ingestAfter.processorLag,
        newest_projected_score_behind_wall_clock_s_at_end: ingestAfter.newestScoreBehindS,
        cached_detail_unchanged_after_load: sameBytesAfterLoad,
      };
      log(`ingest: ${JSON.stringify(ingest)}`);
    }

    const hwm = Object.fromEntries(
      Object.entries(p.pids()).map(([name, pids]) => [name, rssMiB(pids[0]!, 'VmHWM') ?? null]),
    );
    sampler.stop();
    await p.close({ keepDatabase: true });
    const profiles: ProfileSummary[] = o.cpuProf
      ? ['api-off', 'api-on'].flatMap((r) =>
          summariseProfiles(path.join(profileRoot, r), 20).map((s) => ({ ...s, file: `${r}: ${s.file}` })),
        )
      : [];

    const json = buildJson({
      o,
      atStart,
      seeded,
      answers,
      measurements,
      ingest,
      hwm,
      sampler,
      phaseWindows,
      profiles,
      spansPerRequest,
      roles: [...p.roles.values()],
      wallSeconds: (performance.now() - t0) / 1000,
      idleSeconds: (idleDone - t0) / 1000,
    });
    json.setup.database = database.timescale
      ? `${database.label}: 1m buckets from the continuous aggregate fatigue_scores_1m (5m/1h re-aggregated from it)`
      : `${database.label}: 1m buckets by date_bin over fatigue_scores`;
    const bucketText = bucketQuery
      ? `\n\n24 h bucketed query (${bucketQuery.buckets} 1m buckets of ${LONG}, the API's own query function, ${bucketQuery.cagg_ms.runs.length} rounds of 15 calls each way, median ms per call per round; same answer both ways: ${bucketQuery.same_answer}): continuous aggregate ${bucketQuery.cagg_ms.median} ms (${bucketQuery.cagg_ms.min}-${bucketQuery.cagg_ms.max}), date_bin over the raw table ${bucketQuery.date_bin_ms.median} ms (${bucketQuery.date_bin_ms.min}-${bucketQuery.date_bin_ms.max}): ${bucketQuery.speedup.median}x (${bucketQuery.speedup.min}-${bucketQuery.speedup.max}x) faster from the aggregate.\n`
      : '';
    writeResults(
      `api${o.cachedOnly ? '-cached' : ''}${o.idleOnly ? '-idle' : ''}${o.sampleRatio < 1 ? `-sample${o.sampleRatio}` : ''}${o.cpuProf ? '-profile' : ''}`,
      { ...json, bucket_query_24h_1m: bucketQuery },
      markdown(json) + bucketText,
    );
  } finally {
    sampler?.stop();
    await pool.end().catch(() => {});
    await p.close().catch(() => {});
    await clearPrefix(redis, p.config.topicPrefix).catch(() => {});
    redis.disconnect();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Set-up

/**
 * The data set, straight into the read models: sessions rows (as the sessions projection keeps them)
 * and fatigue_scores rows (as the scores projection writes them), scores every 5 s with a slow drift,
 * noise and levels from the score; and the long session's latest score in Redis through the Redis
 * read model's `latest` operation. Deterministic (setseed).
 */
async function seed(pool: Pool, redis: Redis, prefix: string) {
  const t0 = performance.now();
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  const longFrom = now - DAY_MS;
  const c = await pool.connect();
  try {
    await c.query('SELECT setseed(0.42)');
    await c.query(
      `INSERT INTO sessions (session_id, tenant_id, driver_id, vehicle_id, status, started_at, first_ts, last_ts, last_seen_at)
       SELECT $1, $2::text, 'driver-long', 'truck-1', 'active', $3::timestamptz, $3::timestamptz, $4::timestamptz,
              $4::timestamptz
       UNION ALL
       SELECT 'bench-api-s' || lpad(i::text, 4, '0'), $2::text, 'driver-' || (i % 40), 'vehicle-' || (i % 60), 'ended',
              $4::timestamptz - make_interval(mins => i) - $5::interval, NULL, NULL,
              $4::timestamptz - make_interval(mins => i)
         FROM generate_series(1, $6::int) AS i`,
      [LONG, TENANT, new Date(longFrom), new Date(now), `${OTHER_SPAN_H} hours`, OTHER_SESSIONS],
    );
    // One score per 5 s of each session's span, ts = window end, window 60 s.
    const { rowCount } = await c.query(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, ocular, driving,
                                   eeg, reaction, yawn, features, baseline_ready, model_version)
       SELECT session_id, ts, gen_random_uuid(), tenant_id, ts - interval '60 seconds', score,
              CASE WHEN score >= 70 THEN 2 WHEN score >= 50 THEN 1 ELSE 0 END,
              round((score / 100 + random() * 0.1)::numeric, 3), round((score / 120)::numeric, 3),
              round((random() * 0.6)::numeric, 3), CASE WHEN random() < 0.2 THEN 0.333 ELSE 0 END, 0,
              jsonb_build_object('perclos', round((score / 600)::numeric, 4), 'long_blink_share', 0.1, 'sdlp_m', 0.21,
                                 'lane_departures', 0, 'eeg_ratio', 1.4, 'eeg_ratio_z', 0.5, 'lapses', 0, 'yawns', 0),
              ts > started_at + interval '5 minutes', 'fatigue-v1'
         FROM (SELECT s.session_id, s.tenant_id, s.started_at, t AS ts,
                      round((35 + 25 * sin(extract(epoch FROM t) / 1800) + random() * 20)::numeric, 1)::real AS score
                 FROM sessions s,
                      generate_series(s.started_at + interval '60 seconds',
                                      coalesce(s.last_seen_at, s.started_at), interval '5 seconds') AS t
                WHERE s.tenant_id = $1) x`,
      [TENANT],
    );
    // The sessions projection's counters for what was inserted.
    await c.query(
      `UPDATE sessions s SET score_count = x.n, last_score = x.last_score, last_level = x.last_level,
              last_score_at = x.last_ts, max_score = x.max_score, max_level = x.max_level
         FROM (SELECT DISTINCT ON (session_id) session_id, count(*) OVER w AS n, score AS last_score,
                      level AS last_level, ts AS last_ts, max(score) OVER w AS max_score, max(level) OVER w AS max_level
                 FROM fatigue_scores WHERE tenant_id = $1
               WINDOW w AS (PARTITION BY session_id)
                ORDER BY session_id, ts DESC) x
        WHERE s.session_id = x.session_id`,
      [TENANT],
    );
    await c.query('ANALYZE sessions');
    await c.query('ANALYZE fatigue_scores');
    const { rows } = await c.query('SELECT * FROM fatigue_scores WHERE session_id = $1 ORDER BY ts DESC LIMIT 1', [
      LONG,
    ]);
    const last = rows[0] as Record<string, unknown> & { ts: Date; window_start_ts: Date };
    const event: FatigueScored = {
      event_id: String(last.event_id),
      tenant_id: TENANT,
      session_id: LONG,
      ts: last.ts.getTime(),
      window_start_ts: last.window_start_ts.getTime(),
      window_end_ts: last.ts.getTime(),
      score: Number(last.score),
      level: Number(last.level),
      components: {
        ocular: last.ocular as number,
        driving: last.driving as number,
        eeg: last.eeg as number,
        reaction: last.reaction as number,
        yawn: last.yawn as number,
      },
      features: last.features as FatigueScored['features'],
      baseline_ready: Boolean(last.baseline_ready),
      model_version: String(last.model_version),
    };
    const ops = projectRedis([{ topic: 'scores', partition: 0, offset: '0', value: event }], {
      prefix,
      ...defaultRedisModelOptions,
    });
    for (const op of ops) {
      const s = redisScripts[op.script];
      await redis.eval(s.lua, s.numberOfKeys, ...op.keys, ...op.args);
    }
    return { rows: rowCount ?? 0, ms: performance.now() - t0, longFrom, longRows: 17_280 - 12 };
  } finally {
    c.release();
  }
}

/** GET with the key; throws unless 200; the body's bytes. */
async function fetchChecked(url: string, key: string): Promise<Buffer> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${body.toString().slice(0, 500)}`);
  return body;
}

/** Polls until `check` is true (then the time it was, ms since epoch) or the timeout (then undefined). */
async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return Date.now();
    await sleep(500);
  }
  return undefined;
}

/** End offsets of the inputs, simulated scores projected so far, the processor's lag and freshness. */
async function ingestState(p: Pipeline, inputs: string[], pool: Pool, simStart: number) {
  let inputEnd = 0;
  const ends = new Map<string, number>();
  for (const t of inputs) {
    for (const x of await p.admin.fetchTopicOffsets(t)) {
      inputEnd += Number(x.high);
      ends.set(`${t}/${x.partition}`, Number(x.high));
    }
  }
  let committed = 0;
  for (const t of await p.admin.fetchOffsets({ groupId: p.groups().processor, topics: inputs })) {
    for (const x of t.partitions) committed += Math.max(0, Number(x.offset));
  }
  const { rows } = await pool.query<{ n: string; newest: Date | null }>(
    'SELECT count(*) AS n, max(ts) AS newest FROM fatigue_scores WHERE tenant_id = $1 AND ts > $2',
    [TENANT, new Date(simStart - 60_000)],
  );
  return {
    inputEnd,
    scores: Number(rows[0]!.n),
    processorLag: inputEnd - committed,
    newestScoreBehindS: rows[0]!.newest ? round((Date.now() - rows[0]!.newest.getTime()) / 1000, 2) : null,
  };
}

/** Deletes this run's Redis keys (read model, rate-limit counters): everything under the prefix. */
async function clearPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

// ---------------------------------------------------------------------------------------------
// Results

function buildJson(x: {
  o: Options;
  atStart: ReturnType<typeof machine>;
  seeded: Awaited<ReturnType<typeof seed>>;
  answers: Record<string, number | boolean>;
  measurements: Measurement[];
  ingest: Record<string, unknown> | null;
  hwm: Record<string, number | null>;
  sampler: ProcSampler;
  phaseWindows: Record<string, { from: number; to: number }>;
  profiles: ProfileSummary[];
  spansPerRequest: Record<string, number>;
  roles: Role[];
  wallSeconds: number;
  idleSeconds: number;
}) {
  const of = (phase: string, target: string) =>
    x.measurements.filter((m) => m.phase === phase && m.target === target).sort((a, b) => a.run - b.run);
  const summary: Record<string, Record<string, unknown>> = {};
  const targets = [...new Set(x.measurements.filter((m) => m.phase !== 'warm-up').map((m) => m.target))];
  for (const phase of ['idle', 'load']) {
    summary[phase] = {};
    for (const t of targets) {
      const ms = of(phase, t);
      if (!ms.length) continue;
      summary[phase]![t] = {
        runs: ms.length,
        requests_per_s: spread(ms.map((m) => m.requests_per_s)),
        p50_ms: spread(ms.map((m) => m.latency_ms.p50)),
        p99_ms: spread(ms.map((m) => m.latency_ms.p99)),
        non_2xx_and_errors: ms.reduce((n, m) => n + m.non_2xx + m.errors, 0),
        bytes_per_response: ms[0]!.bytes_per_response,
        server_cores_mean: round(ms.reduce((n, m) => n + (m.cores[roleOf(m.server)] ?? 0), 0) / ms.length, 2),
        bench_cores_mean: round(ms.reduce((n, m) => n + (m.cores.bench ?? 0), 0) / ms.length, 2),
        machine_busy_cores_mean: round(ms.reduce((n, m) => n + m.machine_busy_cores, 0) / ms.length, 2),
      };
    }
  }
  const ratio = (phase: string, a: string, b: string): Spread | null => {
    const as = of(phase, a);
    const bs = of(phase, b);
    if (!as.length || as.length !== bs.length) return null;
    return spread(as.map((m, i) => m.requests_per_s / Math.max(1e-9, bs[i]!.requests_per_s)));
  };
  const ratios: Record<string, Record<string, Spread | null>> = {};
  for (const phase of ['idle', 'load']) {
    ratios[phase] = {
      'tracing on / off, cached detail': ratio(phase, 'api on: cached detail', 'api off: cached detail'),
      'tracing on / off, scores 24h 1m': ratio(phase, 'api on: scores 24h 1m', 'api off: scores 24h 1m'),
      'api off / bare, cached detail': ratio(phase, 'api off: cached detail', 'bare: cached detail bytes'),
      'api on / bare, cached detail': ratio(phase, 'api on: cached detail', 'bare: cached detail bytes'),
    };
  }
  const cachedGoal = (target: string) => {
    const s = summary.load?.[target] as { requests_per_s: Spread; p99_ms: Spread } | undefined;
    if (!s) return null;
    return {
      requests_per_s_median: s.requests_per_s.median,
      p99_ms_median: s.p99_ms.median,
      met: s.requests_per_s.median >= GOAL_RPS && s.p99_ms.median <= GOAL_P99_MS,
    };
  };
  const tracingGoal = (phase: string, q: string) => {
    const r = ratios[phase]![`tracing on / off, ${q}`];
    return r ? { ratio_median: r.median, met: r.median >= GOAL_TRACING_RATIO } : null;
  };
  const phaseCpu = Object.fromEntries(
    Object.entries(x.phaseWindows).map(([phase, w]) => [phase, x.sampler.summary(w.from, w.to)]),
  );
  return {
    machine: x.atStart,
    loadavg_at_end: os.loadavg().map((l) => Math.round(l * 100) / 100),
    wall_seconds: round(x.wallSeconds, 1),
    idle_part_seconds: round(x.idleSeconds, 1),
    goals: {
      text: `cached reads under ingest load: p99 <= ${GOAL_P99_MS} ms at >= ${GOAL_RPS} req/s; tracing on >= ${GOAL_TRACING_RATIO * 100}% of tracing-off throughput`,
      cached_under_load_tracing_off: cachedGoal('api off: cached detail'),
      cached_under_load_tracing_on: cachedGoal('api on: cached detail'),
      tracing_ratio_cached_idle: tracingGoal('idle', 'cached detail'),
      tracing_ratio_cached_load: tracingGoal('load', 'cached detail'),
      tracing_ratio_scores_idle: tracingGoal('idle', 'scores 24h 1m'),
      tracing_ratio_scores_load: tracingGoal('load', 'scores 24h 1m'),
    },
    setup: {
      seconds_per_run: x.o.seconds,
      runs: x.o.runs,
      connections: x.o.connections,
      pipelining: 1,
      load_generator: 'autocannon 8 in the bench process, closed loop, 127.0.0.1',
      api: 'node dist/main.js api, one process per variant; VIGIL_API_RATE_PER_MIN=10000000, VIGIL_API_ADDRESS_RATE_PER_MIN=100000000 (the maxima), VIGIL_LOG_LEVEL=warn',
      tracing_on_export:
        (x.o.zipkin
          ? `Zipkin exporter to ${x.o.zipkin}`
          : 'Zipkin exporter to a counting sink (bench/api-servers.ts sink, its own process)') +
        `, VIGIL_TRACE_SAMPLE_RATIO=${x.o.sampleRatio}`,
      bare: 'node:http handler answering the cached-detail bytes captured from the API (bench/api-servers.ts bare)',
      data: {
        tenant: TENANT,
        long_session: LONG,
        score_rows_seeded: x.seeded.rows,
        other_sessions: OTHER_SESSIONS,
        other_session_span_h: OTHER_SPAN_H,
        seed_ms: Math.round(x.seeded.ms),
      },
      database: 'plain PostgreSQL 15 (no TimescaleDB on this machine): 1m buckets by date_bin over fatigue_scores',
      simulator: `vigil simulate --sessions ${SIM_SESSIONS} --speed realtime (all modalities), vigil process, vigil project`,
      cpu_profile: x.o.cpuProf,
      cached_only: x.o.cachedOnly,
      trace_sample_ratio: x.o.sampleRatio,
      idle_only: x.o.idleOnly,
      fresh_servers: x.o.freshServers,
    },
    answers: x.answers,
    summary,
    ratios,
    tracing_spans_exported_per_request: x.spansPerRequest,
    ingest_during_load: x.ingest,
    peak_rss_mib: { ...x.hwm, bench: peakRssMiB() },
    cpu_and_rss_by_phase: phaseCpu,
    profiles: x.profiles,
    exits: x.roles.map((r) => ({ role: r.name, code: r.child.exitCode, signal: r.child.signalCode })),
    measurements: x.measurements,
  };
}

const roleOf = (s: Server) => (s === 'bare' ? 'bare' : s === 'api tracing off' ? 'api-off' : 'api-on');

/** The short table of bench/results/api.md (exported to re-render it from api.json). */
export function markdown(j: ReturnType<typeof buildJson>): string {
  const met = (g: { met: boolean } | null) => (g === null ? 'not measured' : g.met ? 'met' : '**not met**');
  const range = (s: Spread, d = 0) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
  const g = j.goals;
  const rows: (string | number)[][] = [];
  for (const phase of ['idle', 'load']) {
    for (const [t, v] of Object.entries(j.summary[phase] ?? {})) {
      const s = v as {
        runs: number;
        requests_per_s: Spread;
        p50_ms: Spread;
        p99_ms: Spread;
        non_2xx_and_errors: number;
        bytes_per_response: number;
        server_cores_mean: number;
        bench_cores_mean: number;
        machine_busy_cores_mean: number;
      };
      rows.push([
        phase,
        t,
        s.runs,
        range(s.requests_per_s),
        range(s.p50_ms),
        range(s.p99_ms),
        s.non_2xx_and_errors,
        s.bytes_per_response,
        s.server_cores_mean.toFixed(2),
        // CPU per request is steadier than req/s on a shared machine: it does not depend on the share of
        // the cores the server got.
        s.requests_per_s.median ? ((s.server_cores_mean / s.requests_per_s.median) * 1000).toFixed(3) : '',
        s.bench_cores_mean.toFixed(2),
        s.machine_busy_cores_mean.toFixed(2),
      ]);
    }
  }
  const ratioRows: (string | number)[][] = [];
  for (const phase of ['idle', 'load']) {
    for (const [name, r] of Object.entries(j.ratios[phase] ?? {})) {
      if (r) ratioRows.push([phase, name, range(r, 2)]);
    }
  }
  const cpuNames = [
    'api-off',
    'api-on',
    'bare',
    'sink',
    'bench',
    'processor',
    'projector',
    'simulate',
    'kafka',
    'postgres',
    'redis',
  ];
  const cpuRows = Object.entries(j.cpu_and_rss_by_phase).map(([phase, s]) => [
    phase,
    ...cpuNames.map((n) => (s[n] ? `${s[n]!.cores_mean.toFixed(2)} / ${s[n]!.rss_max_mib}` : '')),
  ]);
  const c = (x: { requests_per_s_median: number; p99_ms_median: number } | null) =>
    x ? `${Math.round(x.requests_per_s_median)} req/s, p99 ${x.p99_ms_median} ms` : 'n/a';
  const t = (x: { ratio_median: number } | null) => (x ? x.ratio_median.toFixed(2) : 'n/a');
  const ing = j.ingest_during_load as Record<string, unknown> | null;
  const profileText = j.profiles.length
    ? [
        '',
        '### CPU profiles (`--cpu-prof`, self time, share of busy time)',
        '',
        ...j.profiles.flatMap((p) => [
          `${p.file}: ${Math.round(p.total_ms / 1000)} s profiled, busy ${(p.busy_share * 100).toFixed(0)}%.`,
          '',
          table(
            ['origin', 'share of busy'],
            p.by_origin.slice(0, 12).map((o) => [o.origin, `${(o.share_of_busy * 100).toFixed(1)}%`]),
          ),
          '',
          table(
            ['function', 'origin', 'share of busy'],
            p.by_function.slice(0, 12).map((f) => [f.function, f.origin, `${(f.share_of_busy * 100).toFixed(1)}%`]),
          ),
          '',
        ]),
      ]
    : [];
  return [
    `Goals: ${g.text}.`,
    `Machine: ${j.machine.cpus} CPUs (${j.machine.cpu_model}), ${j.machine.memory_gib} GiB, Node ${j.machine.node}; load average at start ${j.machine.loadavg_at_start.join(' / ')}, at end ${j.loadavg_at_end.join(' / ')}. Kafka, the registry, PostgreSQL, Redis, the pipeline, the servers and autocannon all share its cores, so absolute figures depend on what else runs (see the load average).`,
    '',
    `**Goal vs measured.** Cached session detail under ingest load (median of ${j.setup.runs} runs, ${j.setup.connections} connections): tracing off ${c(g.cached_under_load_tracing_off)}: ${met(g.cached_under_load_tracing_off)}; tracing on ${c(g.cached_under_load_tracing_on)}: ${met(g.cached_under_load_tracing_on)}. ` +
      `Tracing on / off throughput (paired runs, median): cached ${t(g.tracing_ratio_cached_idle)} idle (${met(g.tracing_ratio_cached_idle)}), ${t(g.tracing_ratio_cached_load)} under load (${met(g.tracing_ratio_cached_load)}); scores ${t(g.tracing_ratio_scores_idle)} idle (${met(g.tracing_ratio_scores_idle)}), ${t(g.tracing_ratio_scores_load)} under load (${met(g.tracing_ratio_scores_load)}).`,
    '',
    table(
      [
        'phase',
        'target',
        'runs',
        'req/s median (min-max)',
        'p50 ms',
        'p99 ms',
        'non-2xx + errors',
        'bytes/response',
        'server cores',
        'server CPU ms/request',
        'autocannon cores',
        'machine busy cores (of 2)',
      ],
      rows,
    ),
    '',
    table(['phase', 'throughput ratio (paired runs)', 'median (min-max)'], ratioRows),
    '',
    ing
      ? `Load phase: ${SIM_SESSIONS} simulated sessions in real time → ${ing.input_events_per_s} input events/s, ${ing.scores_projected_per_s} scores/s projected; processor lag at the end ${ing.processor_lag_records_at_end} records; newest projected score ${ing.newest_projected_score_behind_wall_clock_s_at_end} s behind the wall clock; first score ${ing.first_score_after_s} s after the simulator started. The cached detail was byte-identical before and after: ${ing.cached_detail_unchanged_after_load}.`
      : 'Load phase: not run (`--idle-only`).',
    '',
    'CPU cores (mean) / max RSS MiB per process and phase (1 s samples; "bench" is autocannon; postgres and redis are all their processes):',
    '',
    table(['phase', ...cpuNames], cpuRows),
    '',
    `Peak RSS (VmHWM, MiB): ${Object.entries(j.peak_rss_mib)
      .map(([n, v]) => `${n} ${v}`)
      .join(', ')}.`,
    '',
    `Answers: cached detail ${j.answers.detail_bytes} bytes (bare handler serves the same bytes: ${j.answers.bare_same_bytes}; tracing-on API the same bytes: ${j.answers.tracing_on_same_bytes}); 24 h at 1m: ${j.answers.scores_1m_buckets} buckets over ${j.answers.scores_1m_rows} rows; 24 h raw: ${j.answers.scores_raw_rows} rows. ` +
      `Data: ${j.setup.data.score_rows_seeded} fatigue_scores rows (${LONG}: 24 h at one per 5 s; ${OTHER_SESSIONS} sessions of ${OTHER_SPAN_H} h), seeded in ${j.setup.data.seed_ms} ms; ${j.setup.database}.`,
    '',
    `Notes: closed loop (autocannon, ${j.setup.connections} connections, pipelining 1, ${j.setup.seconds_per_run} s per run, targets in rotated order each round, 1 s idle between runs): p99 includes queueing at saturation. The bare handler answers the same body but none of the API's headers (helmet, RateLimit-*, X-Request-Id, traceparent). Tracing on: ${j.setup.tracing_on_export}; spans exported per request: ${
      Object.entries(j.tracing_spans_exported_per_request)
        .map(([ph, n]) => `${n} ${ph}`)
        .join(', ') || 'not counted'
    }.${j.setup.fresh_servers ? ' New API processes (off and on) before every round, warmed up again.' : ''} Whole run ${Math.round(j.wall_seconds)} s.`,
    ...profileText,
  ].join('\n');
}
