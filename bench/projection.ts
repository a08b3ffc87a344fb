import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../core/config';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { stringify } from 'csv-stringify/sync';
import { repoRoot } from '../core/paths';
import { createLogger } from '../core/logger';
import { migrate } from '../core/migrate';
import { readToEnd } from '../core/read-to-end';
import { Publisher } from '../producers/publisher';
import { runSimulation } from '../producers/simulator/run';
import { uuidFrom } from '../processors/fatigue/ids';
import { eegColumns } from '../projections/eeg/model';
import { scoreColumns } from '../projections/scores/model';
import type { Column } from '../projections/columns';
import type { TopicKey } from '../schemas/catalogue';
import type { EegBandPower, FatigueScored } from '../schemas/types';
import { benchKafka } from './setup';
import { peakRssMiB, round, spread, table, writeResults, type Spread } from './lib';
import { CLK_TCK, cpuTicks, rssMiB } from './procstat';
import { IDLE_S, LIVE_DESCRIPTION, liveRun, type LiveRun } from './projection-live';
import { describeDatabase } from './database';

/**
 * Projection throughput on the database of VIGIL_DATABASE_URL (by default the stack's TimescaleDB
 * cluster: hypertables; the results name which, from the migrated database itself).
 * Topics are pre-loaded once: simulated sessions at max speed (EEG only) and synthetic
 * fatigue scores. Then, per repetition, into a fresh migrated database:
 * 1. `vigil project --models eeg`, then `--models scores`, as their own processes (the real
 *    ProjectionRunner: decode, statements, checkpoint in the same transaction) from offset 0 until
 *    their checkpoints reach the topics' ends: rows/s after the first committed batch;
 * 2. the same rows by COPY FROM STDIN (pg-copy-streams: what `psql \copy` sends) from CSV rendered
 *    beforehand, into a table of the same layout (LIKE ... INCLUDING ALL, same hypertable call);
 * 3. the same rows by one INSERT per row (autocommit), over the first INSERT_ROWS rows;
 * 4. `vigil projections rebuild <model>` as its own process once the live runner caught up: the
 *    events/s it reports (replay into a shadow schema up to the live checkpoint, then the swap);
 * 5. on TimescaleDB: every chunk of the table compressed (segmentby session_id, orderby ts DESC, as
 *    migration 0005 sets) and the ratio of its size before/after (hypertable_compression_stats).
 * TimescaleDB's policy jobs are unscheduled in the bench databases: the simulated event times
 * (2026-01-01) are older than the retention, which would drop chunks under the measurement.
 */
const SESSIONS = 30;
const DURATION_MS = 200_000;
const SCORE_SESSIONS = 200;
const SCORES_PER_SESSION = 150;
const INSERT_ROWS = 3_000;
const REBUILD_TIMEOUT_MS = 90_000;
const RUNS = 3;

type Db = { url: string; drop: () => Promise<void> };
type Bench = Awaited<ReturnType<typeof benchKafka>>;

export async function projectionBench(args: string[] = []): Promise<void> {
  const runsArg = args.indexOf('--live-runs');
  for (const [i, a] of args.entries())
    if (a !== '--cpu-prof' && a !== '--live-only' && a !== '--live-runs' && i !== runsArg + 1)
      throw new Error(
        `unknown argument ${a}; usage: npm run bench -- projection [--live-only [--live-runs N]] [--cpu-prof]`,
      );
  const cpuProf = args.includes('--cpu-prof');
  if (args.includes('--live-only')) return liveBench(cpuProf, runsArg >= 0 ? Number(args[runsArg + 1]) : RUNS);
  const bench = await benchKafka('projection');
  const { config, kafka, serde, topics } = bench;
  const log = createLogger({ level: 'warn', role: 'bench-projection' });

  // Pre-load.
  const publisher = new Publisher(kafka, serde, topics);
  await publisher.connect();
  // Within the accepted ts window (VIGIL_TS_MAX_AGE_MS, 24 h by default) of the records' append time:
  // older events are dead-lettered as ts_out_of_window, not projected.
  const startTs = Date.now() - 3_600_000;
  const sim = await runSimulation(publisher, {
    sessions: SESSIONS,
    durationMs: DURATION_MS,
    speed: 'max',
    seed: 5,
    profile: 'mixed',
    tenantId: 'bench',
    startTs,
    modalities: ['eeg'],
  });
  for (let s = 0; s < SCORE_SESSIONS; s++) {
    await publisher.publish(
      'scores',
      Array.from({ length: SCORES_PER_SESSION }, (_, w) => syntheticScore(s, w, startTs)),
    );
  }
  await publisher.disconnect();
  const published: Record<string, number> = { ...sim.published, scores: SCORE_SESSIONS * SCORES_PER_SESSION };
  process.stdout.write(`pre-loaded ${JSON.stringify(published)}\n`);

  // The rows for COPY and INSERT: the same events, decoded from the topics, rendered once.
  const eeg = await decodedOf<EegBandPower>(bench, 'eeg');
  const scores = await decodedOf<FatigueScored>(bench, 'scores');
  const cases = [
    { model: 'eeg', table: 'eeg_frames', columns: eegColumns as Column<unknown>[], events: eeg as unknown[] },
    { model: 'scores', table: 'fatigue_scores', columns: scoreColumns as Column<unknown>[], events: scores },
  ].map((c) => ({
    ...c,
    csv: Buffer.from(
      stringify(
        c.events.map((e) => c.columns.map((col) => csvField(col.of(e)))),
        { cast: { boolean: (b) => String(b) } }, // csv-stringify writes false as '' (NULL to COPY) by default
      ),
    ),
  }));

  const env = { VIGIL_TOPIC_PREFIX: config.topicPrefix, VIGIL_TOPIC_PARTITIONS: '12' };
  const results: Record<
    string,
    {
      runner: number[];
      runnerCpuUs: number[];
      copy: number[];
      insert: number[];
      runnerRss: number[];
      rebuild: number[];
      rebuildRss: number[];
      rebuildFailures: string[];
      compression: number[];
      rows: number;
    }
  > = {};
  let database = '';
  for (const c of cases) {
    results[c.model] = {
      runner: [],
      runnerCpuUs: [],
      copy: [],
      insert: [],
      runnerRss: [],
      rebuild: [],
      rebuildRss: [],
      rebuildFailures: [],
      compression: [],
      rows: c.events.length,
    };
  }

  for (let r = 0; r < RUNS; r++) {
    // Each run starts from an empty database: the consumer groups of the previous run go too, or their
    // committed offsets (a hint the runner follows where it has no checkpoint) would skip the records.
    await deleteProjectionGroups(bench);
    const db = await freshDatabase(config.database.url, log);
    const client = new Client({ connectionString: db.url });
    client.on('error', () => {}); // the drop below ends it; a query in flight rejects anyway
    try {
      await client.connect();
      const described = await describeDatabase(client);
      database = described.label;
      for (const c of cases) {
        const run = await runProjection(
          db.url,
          env,
          [c.model],
          async () => {
            const { rows } = await client.query<{ n: string }>(
              'SELECT coalesce(sum(next_offset), 0) AS n FROM projection_checkpoints WHERE projection = $1',
              [c.model],
            );
            return Number(rows[0]!.n);
          },
          c.events.length,
        );
        results[c.model]!.runner.push(run.rowsPerS);
        results[c.model]!.runnerCpuUs.push(run.cpuUsPerRow);
        results[c.model]!.runnerRss.push(run.peakRssMiB);
        const stored = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${c.table}`);
        if (Number(stored.rows[0]!.n) !== c.events.length)
          throw new Error(`${c.table}: ${stored.rows[0]!.n} rows, expected ${c.events.length}`);
        const rebuilt = await rebuildRun(db.url, env, c.model, c.events.length);
        if ('failure' in rebuilt) results[c.model]!.rebuildFailures.push(rebuilt.failure);
        else {
          results[c.model]!.rebuild.push(rebuilt.eventsPerS);
          results[c.model]!.rebuildRss.push(rebuilt.peakRssMiB);
        }
        results[c.model]!.copy.push(await copyRun(client, c.table, c.columns, c.csv, c.events.length));
        results[c.model]!.insert.push(await insertRun(client, c.table, c.columns, c.events.slice(0, INSERT_ROWS)));
        if (described.timescale) results[c.model]!.compression.push(await compressionRatio(client, c.table));
        process.stdout.write(
          `run ${r + 1} ${c.model}: runner ${Math.round(run.rowsPerS)} rows/s, rebuild ${'failure' in rebuilt ? rebuilt.failure : rebuilt.eventsPerS + ' events/s'}, COPY ${Math.round(results[c.model]!.copy.at(-1)!)}, INSERT/row ${Math.round(results[c.model]!.insert.at(-1)!)}\n`,
        );
      }
    } finally {
      await client.end().catch(() => {});
      await db.drop();
    }
  }

  const live: LiveRun[] = [];
  for (let r = 0; r < RUNS; r++) {
    const db = await freshDatabase(config.database.url, log);
    try {
      live.push(await liveRun(db.url, cpuProf && r === 0));
    } finally {
      await db.drop();
    }
    process.stdout.write(`live run ${r + 1}: ${JSON.stringify({ ...live.at(-1)!, profile: undefined })}\n`);
  }

  const before = previousResults();
  const json = {
    preloaded: published,
    runs: RUNS,
    insert_rows_per_run: INSERT_ROWS,
    database,
    models: Object.fromEntries(
      Object.entries(results).map(([m, x]) => [
        m,
        {
          rows: x.rows,
          runner_rows_per_s: spread(x.runner),
          runner_cpu_us_per_row: spread(x.runnerCpuUs),
          copy_rows_per_s: spread(x.copy),
          insert_per_row_rows_per_s: spread(x.insert),
          runner_to_copy: spread(x.runner.map((v, i) => v / x.copy[i]!)),
          runner_to_insert: spread(x.runner.map((v, i) => v / x.insert[i]!)),
          runner_peak_rss_mib: spread(x.runnerRss),
          rebuild_events_per_s: x.rebuild.length ? spread(x.rebuild) : null,
          rebuild_peak_rss_mib: x.rebuildRss.length ? spread(x.rebuildRss) : null,
          rebuild_failures: x.rebuildFailures,
          compression_ratio: x.compression.length ? spread(x.compression) : null,
        },
      ]),
    ),
    live: liveSummary(live),
    live_profile: live.find((l) => l.profile)?.profile ?? null,
    bench_process_peak_rss_mib: peakRssMiB(),
    goal: 'runner >= 50% of COPY and >= 10x one INSERT per row; rebuild events/s reported',
    /** The previous results file's figures (the code before the latest change), for the before/after table. */
    before,
  };
  const fmt = (s: Spread) => `${round(s.median, 0)} (${round(s.min, 0)}-${round(s.max, 0)})`;
  const pct = (s: Spread) =>
    `${(s.median * 100).toFixed(0)}% (${(s.min * 100).toFixed(0)}-${(s.max * 100).toFixed(0)}%)`;
  const x = (s: Spread) => `${s.median.toFixed(1)}x (${s.min.toFixed(1)}-${s.max.toFixed(1)}x)`;
  const rows = Object.entries(json.models).map(([m, v]) => [
    `${m} (${v.rows} rows)`,
    fmt(v.runner_rows_per_s),
    fmt(v.copy_rows_per_s),
    fmt(v.insert_per_row_rows_per_s),
    pct(v.runner_to_copy),
    x(v.runner_to_insert),
    fmt(v.runner_peak_rss_mib),
    (v.rebuild_events_per_s ? fmt(v.rebuild_events_per_s) : '-') +
      (v.rebuild_failures.length ? ` (${v.rebuild_failures.length} of ${RUNS} failed)` : ''),
    v.rebuild_peak_rss_mib ? fmt(v.rebuild_peak_rss_mib) : '-',
    v.compression_ratio ? x(v.compression_ratio) : '-',
  ]);
  const was = (get: (b: PreviousResults) => Spread | undefined, f = fmt) => {
    const s = before && get(before);
    return s ? f(s) : '-';
  };
  const beforeAfter = [
    ...Object.entries(json.models).flatMap(([m, v]) => [
      [`${m} backlog rows/s`, was((b) => b.models?.[m]?.runner_rows_per_s), fmt(v.runner_rows_per_s)],
      [`${m} backlog CPU-µs per row`, was((b) => b.models?.[m]?.runner_cpu_us_per_row), fmt(v.runner_cpu_us_per_row)],
    ]),
    ['whole worker idle, cores', was((b) => b.live?.idle_cores, fmt3), fmt3(json.live.idle_cores)],
    ['whole worker consumer groups', was((b) => b.live?.consumer_groups), fmt(json.live.consumer_groups)],
    ['whole worker light load, events/s in', was((b) => b.live?.live_events_per_s), fmt(json.live.live_events_per_s)],
    ['whole worker light load, cores', was((b) => b.live?.live_cores, fmt3), fmt3(json.live.live_cores)],
    [
      'whole worker light load, CPU-µs per event',
      was((b) => b.live?.live_cpu_us_per_event),
      fmt(json.live.live_cpu_us_per_event),
    ],
  ];
  const met = (ok: boolean) => (ok ? 'met' : 'not met');
  const verdict = Object.entries(json.models)
    .map(
      ([m, v]) =>
        `${m}: runner/COPY ${met(v.runner_to_copy.median >= 0.5)} (goal >= 50%), runner/INSERT ${met(v.runner_to_insert.median >= 10)} (goal >= 10x)`,
    )
    .join('; ');
  writeResults(
    'projection',
    json,
    table(
      [
        'read model',
        'runner rows/s median (min-max)',
        'COPY rows/s',
        'one INSERT per row rows/s',
        'runner / COPY',
        'runner / INSERT',
        'runner peak RSS MiB',
        'rebuild events/s',
        'rebuild peak RSS MiB',
        'compression ratio',
      ],
      rows,
    ) +
      `\n\nDatabase: ${database}.\n\n${verdict}.` +
      `\n\nBefore (${before?.when ?? 'no previous results'}) and after (this run), median (min-max) of ${RUNS} runs:\n\n` +
      table(['measure', 'before', 'after'], beforeAfter) +
      `\n\nWhole worker: \`vigil project\` (every read model, PostgreSQL and Redis) on empty topics of its own; idle = its CPU over ${IDLE_S} s once every consumer group is Stable; light load = ${LIVE_DESCRIPTION}, its CPU from the first event until the telemetry models' checkpoints reach the topics' ends, per input event.` +
      `\nRunner rows/s count from its first committed batch to the checkpoints at the topics' ends (the runner also keeps the sessions' counters; COPY and INSERT write the table only). Rebuild: \`vigil projections rebuild <model>\` right after, as printed by it (replay into a shadow schema up to the live checkpoint, then the swap). COPY is timed from pre-rendered CSV (as \`psql \\copy\` from a file); INSERT over the first ${INSERT_ROWS} rows, one autocommitted statement each. ${RUNS} runs; benchmark process peak RSS ${json.bench_process_peak_rss_mib} MiB.`,
  );
}

/** A FatigueScored for synthetic session `s`, window `w` (5 s apart), deterministic ids. */
function syntheticScore(s: number, w: number, startTs: number): FatigueScored {
  const sessionId = uuidFrom('bench', 'session', s);
  const ts = startTs + 60_000 + w * 5_000;
  const score = (s * 7 + w * 3) % 100;
  return {
    event_id: uuidFrom('bench', 'score', sessionId, ts),
    tenant_id: 'bench',
    session_id: sessionId,
    ts,
    window_start_ts: ts - 60_000,
    window_end_ts: ts,
    score,
    level: score >= 70 ? 2 : score >= 50 ? 1 : 0,
    components: { ocular: 0.5, driving: 0.25, eeg: null, reaction: 0.125, yawn: 0 },
    features: {
      perclos: 0.125,
      long_blink_share: 0.5,
      sdlp_m: 0.25,
      lane_departures: w % 3,
      eeg_ratio: null,
      eeg_ratio_z: null,
      lapses: 1,
      yawns: 0,
    },
    baseline_ready: w >= 60,
    model_version: 'fatigue-v1',
  };
}

async function decodedOf<T>(bench: Bench, key: TopicKey): Promise<T[]> {
  const records = await readToEnd(bench.kafka, bench.topics[key], { timeoutMs: 120_000 });
  return Promise.all(records.map(async (r) => (await bench.serde.decode<T>(r.value)).value));
}

/** A column value as CSV: null stays an empty unquoted field (COPY's NULL in CSV format). */
const csvField = (v: unknown): unknown => (v === null || v === undefined ? null : v);

/**
 * Compresses every chunk of `table` (its compression settings from migration 0005) and returns the
 * ratio of the chunks' total size before to after, from TimescaleDB's own stats.
 */
async function compressionRatio(client: Client, table: string): Promise<number> {
  await client.query(`SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks($1::regclass) c`, [table]);
  const { rows } = await client.query<{ before: string; after: string }>(
    `SELECT before_compression_total_bytes AS before, after_compression_total_bytes AS after
       FROM hypertable_compression_stats($1::regclass)`,
    [table],
  );
  return round(Number(rows[0]!.before) / Number(rows[0]!.after), 2);
}

/** A fresh database on the server of `url`, migrated. */
async function freshDatabase(url: string, log: ReturnType<typeof createLogger>): Promise<Db> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const name = `vigil_bench_${Date.now().toString(36)}`;
  const c = new Client({ connectionString: admin.toString() });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  await migrate({ database: dbUrl.toString(), log });
  const c2 = new Client({ connectionString: dbUrl.toString() });
  await c2.connect();
  try {
    const { rows } = await c2.query<{ on: boolean }>('SELECT vigil_timescale() AS on');
    if (rows[0]!.on)
      await c2.query(
        `SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL`,
      );
  } finally {
    await c2.end();
  }
  return {
    url: dbUrl.toString(),
    drop: async () => {
      const d = new Client({ connectionString: admin.toString() });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

/**
 * `vigil project --models <models>` as its own process until `progress()` (the sum of its checkpoints)
 * reaches `total`; rate over what it applied after its first commit, to the last one.
 */
async function runProjection(
  dbUrl: string,
  env: Record<string, string>,
  models: string[],
  progress: () => Promise<number>,
  total: number,
): Promise<{ rowsPerS: number; cpuUsPerRow: number; seconds: number; peakRssMiB: number }> {
  const child = spawn(
    process.execPath,
    [path.join(repoRoot(), 'dist', 'main.js'), 'project', '--models', models.join(',')],
    {
      env: {
        ...process.env,
        ...env,
        VIGIL_DATABASE_URL: dbUrl,
        VIGIL_TRACING: 'off',
        VIGIL_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const deadline = performance.now() + 150_000;
    let t0 = 0;
    let n0 = 0;
    let n = 0;
    let c0 = 0;
    while ((n = await progress()) < total) {
      if (performance.now() > deadline) throw new Error(`projection ${models} reached ${n} of ${total} in 150 s`);
      if (!t0 && n > 0) {
        t0 = performance.now();
        c0 = cpuTicks(child.pid!)!;
        n0 = n;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const t1 = performance.now();
    if (!t0) throw new Error('caught up before a first poll saw progress: too few events to measure');
    const cpuUsPerRow = (((cpuTicks(child.pid!)! - c0) / CLK_TCK) * 1e6) / (n - n0);
    const peak = rssMiB(child.pid!, 'VmHWM') ?? NaN;
    return { rowsPerS: (n - n0) / ((t1 - t0) / 1000), cpuUsPerRow, seconds: (t1 - t0) / 1000, peakRssMiB: peak };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** `vigil projections rebuild <model>` as its own process: the events/s it prints, and its peak RSS. */
async function rebuildRun(
  dbUrl: string,
  env: Record<string, string>,
  model: string,
  events: number,
): Promise<{ eventsPerS: number; peakRssMiB: number } | { failure: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'main.js'), 'projections', 'rebuild', model], {
    env: { ...process.env, ...env, VIGIL_DATABASE_URL: dbUrl, VIGIL_TRACING: 'off', VIGIL_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let peak = 0;
  const sampler = setInterval(() => {
    // Unreadable once it exited: the peak so far stands.
    peak = Math.max(peak, rssMiB(child.pid!, 'VmHWM') ?? peak);
  }, 100);
  // A rebuild once stalled here for minutes under heavy machine load: bounded, and reported as failed.
  const timer = setTimeout(() => child.kill('SIGKILL'), REBUILD_TIMEOUT_MS);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(timer);
  clearInterval(sampler);
  const m = /rebuilt \S+: (\d+) events in [\d.]+ s \((\d+) events\/s\)/.exec(err);
  if (code !== 0 || !m || Number(m[1]) !== events) {
    const tail = err.trim().split('\n').slice(-3).join(' / ');
    return { failure: `exit ${code ?? 'SIGKILL after ' + REBUILD_TIMEOUT_MS / 1000 + ' s'}: ${tail}` };
  }
  return { eventsPerS: Number(m[2]), peakRssMiB: peak };
}

/** COPY FROM STDIN of pre-rendered CSV into an empty table of the same layout; rows/s. */
async function copyRun(
  client: Client,
  tableName: string,
  columns: Column<unknown>[],
  csv: Buffer,
  rows: number,
): Promise<number> {
  const target = `${tableName}_copy`;
  await client.query(`DROP TABLE IF EXISTS ${target}`);
  await client.query(`CREATE TABLE ${target} (LIKE ${tableName} INCLUDING ALL)`);
  await sameHypertable(client, tableName, target);
  const t0 = performance.now();
  await pipeline(
    Readable.from([csv]),
    client.query(copyFrom(`COPY ${target} (${columns.map((c) => c.name).join(', ')}) FROM STDIN (FORMAT csv)`)),
  );
  const s = (performance.now() - t0) / 1000;
  const n = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${target}`)).rows[0]!.n);
  if (n !== rows) throw new Error(`COPY wrote ${n} rows into ${target}, expected ${rows}`);
  await client.query(`DROP TABLE ${target}`);
  return rows / s;
}

/** Makes `target` a hypertable with the chunk interval of `live` (nothing on the plain path). */
async function sameHypertable(client: Client, live: string, target: string): Promise<void> {
  const on = (await client.query<{ on: boolean }>('SELECT vigil_timescale() AS on')).rows[0]!.on;
  if (!on) return;
  const { rows } = await client.query<{ i: string }>(
    `SELECT time_interval::text AS i FROM timescaledb_information.dimensions WHERE hypertable_name = $1`,
    [live],
  );
  await client.query(`SELECT vigil_hypertable($1::regclass, 'ts', $2::interval)`, [target, rows[0]!.i]);
}

/** One INSERT per row, each its own transaction, into an empty table of the same layout; rows/s. */
async function insertRun(
  client: Client,
  tableName: string,
  columns: Column<unknown>[],
  events: unknown[],
): Promise<number> {
  const target = `${tableName}_insert`;
  await client.query(`DROP TABLE IF EXISTS ${target}`);
  await client.query(`CREATE TABLE ${target} (LIKE ${tableName} INCLUDING ALL)`);
  await sameHypertable(client, tableName, target);
  const text = `INSERT INTO ${target} (${columns.map((c) => c.name).join(', ')}) VALUES (${columns.map((c, i) => `$${i + 1}::${c.type}`).join(', ')}) ON CONFLICT DO NOTHING`;
  const t0 = performance.now();
  for (const e of events)
    await client.query(
      text,
      columns.map((c) => c.of(e)),
    );
  const s = (performance.now() - t0) / 1000;
  await client.query(`DROP TABLE ${target}`);
  return events.length / s;
}

type PreviousResults = {
  when?: string;
  models?: Record<string, { runner_rows_per_s?: Spread; runner_cpu_us_per_row?: Spread }>;
  live?: Record<string, Spread>;
};

/** The figures of the results file this run replaces (without its own `before`). */
function previousResults(): PreviousResults | null {
  try {
    const prev = JSON.parse(
      fs.readFileSync(path.join(repoRoot(), 'bench', 'results', 'projection.json'), 'utf8'),
    ) as PreviousResults & { before?: unknown; live_profile?: unknown };
    delete prev.before;
    delete prev.live_profile;
    return prev;
  } catch {
    return null;
  }
}

function liveSummary(runs: LiveRun[]) {
  const of = (k: Exclude<keyof LiveRun, 'profile'>) => spread(runs.map((r) => r[k]));
  return {
    idle_cores: of('idle_cores'),
    consumer_groups: of('consumer_groups'),
    live_events_per_s: of('live_events_per_s'),
    live_cores: of('live_cores'),
    live_cpu_us_per_event: of('live_cpu_us_per_event'),
    peak_rss_mib: of('peak_rss_mib'),
  };
}

const fmt3 = (s: Spread) => `${s.median.toFixed(3)} (${s.min.toFixed(3)}-${s.max.toFixed(3)})`;

/** `--live-only`: the whole-worker idle and light-load runs alone, printed (no results file written). */
async function liveBench(cpuProf: boolean, runs = RUNS): Promise<void> {
  const config = loadConfig(process.env);
  const log = createLogger({ level: 'warn', role: 'bench-projection' });
  const done: LiveRun[] = [];
  for (let r = 0; r < runs; r++) {
    const db = await freshDatabase(config.database.url, log);
    try {
      done.push(await liveRun(db.url, cpuProf && r === 0));
    } finally {
      await db.drop();
    }
    process.stdout.write(`live run ${r + 1}: ${JSON.stringify({ ...done.at(-1)!, profile: undefined })}\n`);
  }
  process.stdout.write(`${JSON.stringify({ live: liveSummary(done), profile: done[0]?.profile }, null, 2)}\n`);
}

/** Deletes the consumer groups `vigil project` and `vigil projections rebuild` left on the bench's topics. */
async function deleteProjectionGroups(bench: Bench): Promise<void> {
  const admin = bench.kafka.admin();
  await admin.connect();
  try {
    const prefix = `${bench.config.topicPrefix}.projection`;
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups);
  } finally {
    await admin.disconnect();
  }
}
