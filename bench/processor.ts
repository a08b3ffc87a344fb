import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../core/paths';
import { Publisher } from '../producers/publisher';
import { runSimulation } from '../producers/simulator/run';
import { ProcessorRunner } from '../processors/runner';
import { fatigueProcessor } from '../processors/fatigue/keyed-processor';
import { createLogger } from '../core/logger';
import type { FatigueScored } from '../schemas/types';
import type { TopicKey } from '../schemas/catalogue';
import { benchKafka } from './setup';
import { migratedDatabase } from './pipeline';
import { peakRssMiB, percentile, round, spread, table, writeResults } from './lib';
import { CLK_TCK, cpuTicks, rssMiB } from './procstat';
import { summariseProfiles, type ProfileSummary } from './cpu-profile';
import { step } from '../processors/fatigue/processor';
import { initialState, serializeState, type FatigueState } from '../processors/fatigue/state';
import { encodeStateBinary } from '../processors/fatigue/state-codec';
import { SESSION, T0, eeg, every, face, merge, sessionStarted, vehicle } from '../processors/fatigue/testing';
import { encodeSnapshot } from '../processors/snapshot-codec';

/**
 * Processor throughput, CPU cost and latency.
 * `npm run bench -- processor [--label name] [--cpu-prof]`
 * 1. Throughput: input topics pre-loaded with simulator output (max speed); one ProcessorRunner
 *    instance from offset 0 (decode, merge, model, transactions) against a raw kafkajs eachBatch
 *    consumer that only decodes the same records, alternating, in the same process and run; the
 *    runner's CPU (process.cpuUsage) per event from its first record to its last.
 * 2. Idle and light load, the processor as its own process (`dist/main.js process`, 12 partitions):
 *    its CPU (/proc/<pid>/stat) over three 10 s windows with its partitions assigned and no input
 *    (the fixed cost), then over the three thirds of a real-time run of 200 sessions (CPU-µs per input
 *    event); for each score, wall time when it is readable (read_committed) minus its window end.
 * Results keep one column per `--label` (bench/results/processor.json `by_label`): a change is
 * measured under a new label and the earlier columns stay beside it. `--cpu-prof` starts the
 * processor process with --cpu-prof and summarises its profile (self time by origin and function).
 */
const SESSIONS = 40;
const DURATION_MS = 5 * 60_000;
const RUNS = 2;
const inputs: TopicKey[] = ['sessions', 'eeg', 'face', 'vehicle', 'game', 'commands'];

interface Options {
  label: string;
  cpuProf: boolean;
}

function parseOptions(args: string[]): Options {
  const o: Options = { label: 'current', cpuProf: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--label' && args[i + 1]) o.label = args[++i]!;
    else if (a === '--cpu-prof') o.cpuProf = true;
    else throw new Error(`unknown option ${a}; use --label <name> --cpu-prof`);
  }
  return o;
}

/** The figures of one labelled run, kept side by side in the results. */
interface LabelFigures {
  when: string;
  processor_events_per_s: number;
  processor_cpu_us_per_event_from_offset_0: number;
  idle_cores: { median: number; min: number; max: number };
  light_load_cpu_us_per_event: { median: number; min: number; max: number };
  light_load_cores: number;
  score_readable_p99_ms: number;
  /** The processor process ran with --cpu-prof: its sampling adds CPU (a few % of a core) to the idle and light-load figures. */
  profiled?: boolean;
}

export async function processorBench(args: string[] = []): Promise<void> {
  const o = parseOptions(args);
  const { config, kafka, serde, topics } = await benchKafka('processor');
  const publisher = new Publisher(kafka, serde, topics);
  await publisher.connect();
  const sim = await runSimulation(publisher, {
    sessions: SESSIONS,
    durationMs: DURATION_MS,
    speed: 'max',
    seed: 9,
    profile: 'mixed',
    tenantId: 'bench',
    // Recent: input topics stamp LogAppendTime and the processor accepts ts at most 24 h behind it.
    startTs: Math.floor(Date.now() / 1000) * 1000 - DURATION_MS,
  });
  await publisher.disconnect();
  const total = Object.values(sim.published).reduce((a, b) => a + b, 0);
  process.stdout.write(`pre-loaded ${total} events (${JSON.stringify(sim.published)})\n`);

  const raw: number[] = [];
  const proc: number[] = [];
  const procCpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    raw.push(
      await rawDecode(
        kafka,
        serde,
        inputs.map((k) => topics[k]),
        total,
        `${config.topicPrefix}.raw${r}`,
      ),
    );
    const run = await processorRun(kafka, serde, topics, total, `${config.topicPrefix}.proc${r}`);
    proc.push(run.eventsPerS);
    procCpu.push(run.cpuUsPerEvent);
  }
  const ratio = proc.map((p, i) => p / raw[i]!);
  const latency = await latencyRun(o);
  const snapshots = snapshotCost();
  const previous = readPrevious();
  const figures: LabelFigures = {
    when: new Date().toISOString(),
    processor_events_per_s: spread(proc).median,
    processor_cpu_us_per_event_from_offset_0: spread(procCpu).median,
    idle_cores: pick(spread(latency.idleCores)),
    light_load_cpu_us_per_event: pick(spread(latency.cpuUsPerEvent)),
    light_load_cores: latency.loadCores,
    score_readable_p99_ms: latency.p99,
    profiled: o.cpuProf,
  };
  const byLabel: Record<string, LabelFigures> = { ...previous, [o.label]: figures };
  const json = {
    preloaded_events: total,
    sessions: SESSIONS,
    event_time_per_session_s: DURATION_MS / 1000,
    raw_decode_events_per_s: spread(raw),
    processor_events_per_s: spread(proc),
    processor_to_raw_ratio: spread(ratio),
    processor_cpu_us_per_event_from_offset_0: spread(procCpu),
    realtime_latency_ms: latency,
    label: o.label,
    by_label: byLabel,
    cpu_profile: latency.profiles,
    snapshot_cost: snapshots,
    peak_rss_mib: peakRssMiB(),
    goal: 'processor >= 60% of raw decode; latency reported; fixed (idle) cost and CPU-µs per event at light load reported per change',
  };
  writeResults(
    'processor',
    json,
    table(
      ['consumer (from offset 0)', 'events/s median', 'min-max', 'runs'],
      [
        [
          'raw kafkajs eachBatch, decode only',
          round(json.raw_decode_events_per_s.median),
          `${round(json.raw_decode_events_per_s.min)}-${round(json.raw_decode_events_per_s.max)}`,
          RUNS,
        ],
        [
          'ProcessorRunner (decode, merge, model, EOS transactions)',
          round(json.processor_events_per_s.median),
          `${round(json.processor_events_per_s.min)}-${round(json.processor_events_per_s.max)}`,
          RUNS,
        ],
      ],
    ) +
      `\n\nProcessor / raw (paired): median ${(json.processor_to_raw_ratio.median * 100).toFixed(0)}% (${(json.processor_to_raw_ratio.min * 100).toFixed(0)}-${(json.processor_to_raw_ratio.max * 100).toFixed(0)}%); goal >= 60%.` +
      `\n\nReal-time run, ${latency.sessions} sessions for ${latency.seconds} s: window end → score readable: p50 ${latency.p50} ms, p95 ${latency.p95} ms, p99 ${latency.p99} ms over ${latency.scores} scores (includes the 2 s allowed lateness and the 100 ms publishing tick).` +
      `\nPeak RSS: the processor process in the real-time run ${latency.processorPeakRssMiB} MiB (RSS every 5 s: ${latency.processorRssEvery5sMiB.join(', ')}); the benchmark process (simulator, in-process runners of the throughput part, consumers) ${json.peak_rss_mib} MiB.` +
      `\n\n## CPU per change (one column per \`--label\`; median, min-max; the machine is shared)\n\n` +
      labelTable(byLabel) +
      `\n\nOne session's changelog value (fatigue state after 6 min of face 30 Hz, vehicle and EEG 10 Hz; ${snapshots.reorderBuffer} samples in the reorder buffer, ${snapshots.buckets} slices): ` +
      `JSON as before ${snapshots.json.bytes} B, ${snapshots.json.us.median} µs (${snapshots.json.us.min}-${snapshots.json.us.max}); ` +
      `binary ${snapshots.binary.bytes} B, ${snapshots.binary.us.median} µs (${snapshots.binary.us.min}-${snapshots.binary.us.max}); 3 runs of 2,000 encodings.` +
      profileMarkdown(latency.profiles),
  );
}

/**
 * Size and encoding CPU of one session's changelog value, JSON as written before binary snapshots
 * (state as a JSON string inside a JSON envelope) against the binary one.
 */
function snapshotCost() {
  const end = T0 + 6 * 60_000;
  let state: FatigueState = initialState(SESSION);
  const inputs = merge(
    [sessionStarted(T0)],
    every(T0, end, 33, (ts, i) => face(ts, { closure: i % 97 < 9 ? 0.9 : 0.1 + (i % 7) / 100 })),
    every(T0, end, 100, (ts, i) => vehicle(ts, { speed: 80 + (i % 5), offset: ((i % 13) - 6) / 31 })),
    every(T0, end, 100, (ts, i) => eeg(ts, { ratio: 1 + (i % 11) / 17 })),
  );
  for (const x of inputs) state = step(state, x).state;
  const applied = Object.fromEntries(inputs.slice(0, 6).map((_, i) => [`vigil.telemetry.t${i}.v1`, String(1e9 + i)]));
  const json = () =>
    Buffer.from(JSON.stringify({ p: 3, applied, state: serializeState(state), owner: 'tenant-1', seenAt: end }));
  const binary = () =>
    encodeSnapshot({
      p: 3,
      applied,
      owner: 'tenant-1',
      seenAt: end,
      state: { codec: 1, bytes: encodeStateBinary(state) },
    });
  const time = (f: () => Buffer) => {
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 2_000; i++) f();
      runs.push(((performance.now() - t0) * 1000) / 2_000);
    }
    return spread(runs);
  };
  return {
    reorderBuffer: state.pending.length - state.pendingHead,
    buckets: state.buckets.length,
    json: { bytes: json().length, us: time(json) },
    binary: { bytes: binary().length, us: time(binary) },
  };
}

const pick = (s: { median: number; min: number; max: number }) => ({ median: s.median, min: s.min, max: s.max });

/** The labelled columns of the previous results file, if any. */
function readPrevious(): Record<string, LabelFigures> {
  try {
    const file = path.join(repoRoot(), 'bench', 'results', 'processor.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { by_label?: Record<string, LabelFigures> };
    return json.by_label ?? {};
  } catch {
    return {};
  }
}

function labelTable(byLabel: Record<string, LabelFigures>): string {
  const labels = Object.keys(byLabel);
  const f = (s: { median: number; min: number; max: number }, d = 3) =>
    `${round(s.median, d)} (${round(s.min, d)}-${round(s.max, d)})`;
  const row = (name: string, cell: (x: LabelFigures) => string | number) => [
    name,
    ...labels.map((l) => cell(byLabel[l]!)),
  ];
  return table(
    ['measure', ...labels],
    [
      row('idle: cores, 12 partitions assigned, no input (3 × 10 s)', (x) => f(x.idle_cores, 2)),
      row('200 sessions real time: CPU-µs per input event (3 × 20 s)', (x) => f(x.light_load_cpu_us_per_event, 2)),
      row('200 sessions real time: cores', (x) => round(x.light_load_cores, 2)),
      row('from offset 0: CPU-µs per event (median of runs)', (x) =>
        round(x.processor_cpu_us_per_event_from_offset_0, 2),
      ),
      row('from offset 0: events/s (median of runs)', (x) => round(x.processor_events_per_s, 2)),
      row('window end → score readable p99, ms', (x) => x.score_readable_p99_ms),
      row('processor under --cpu-prof (its sampling adds CPU)', (x) => (x.profiled ? 'yes' : 'no')),
      row('measured at', (x) => x.when.slice(0, 16)),
    ],
  );
}

function profileMarkdown(profiles: ProfileSummary[]): string {
  if (profiles.length === 0) return '';
  const p = profiles[0]!;
  return (
    `\n\n### CPU profile of the processor process (--cpu-prof, idle then 200 sessions; busy ${(p.busy_share * 100).toFixed(1)}% of ${Math.round(p.total_ms)} ms)\n\n` +
    table(
      ['origin', 'self ms', 'share of busy'],
      p.by_origin.slice(0, 12).map((x) => [x.origin, Math.round(x.ms), `${(x.share_of_busy * 100).toFixed(1)}%`]),
    ) +
    '\n\n' +
    table(
      ['function', 'origin', 'self ms', 'share of busy'],
      p.by_function
        .slice(0, 15)
        .map((x) => [x.function, x.origin, Math.round(x.ms), `${(x.share_of_busy * 100).toFixed(1)}%`]),
    )
  );
}

async function rawDecode(
  kafka: Awaited<ReturnType<typeof benchKafka>>['kafka'],
  serde: Awaited<ReturnType<typeof benchKafka>>['serde'],
  names: string[],
  total: number,
  group: string,
): Promise<number> {
  const consumer = kafka.consumer({ groupId: group, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topics: names, fromBeginning: true });
  let n = 0;
  let t0 = 0;
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (!t0) t0 = performance.now();
        for (const m of batch.messages) if (!serde.decodeKnown(m.value)) await serde.decode(m.value);
        n += batch.messages.length;
        if (n >= total) resolve();
      },
    });
  });
  await done;
  const s = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return total / s;
}

async function processorRun(
  kafka: Awaited<ReturnType<typeof benchKafka>>['kafka'],
  serde: Awaited<ReturnType<typeof benchKafka>>['serde'],
  topics: Awaited<ReturnType<typeof benchKafka>>['topics'],
  total: number,
  group: string,
): Promise<{ eventsPerS: number; cpuUsPerEvent: number }> {
  const runner = new ProcessorRunner(fatigueProcessor, {
    kafka,
    serde,
    topics,
    log: createLogger({ level: 'warn', role: 'bench' }),
    groupPrefix: group,
  });
  let t0 = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  await runner.start();
  while (runner.metrics.recordsIn < total) {
    if (!t0 && runner.metrics.recordsIn > 0) {
      t0 = performance.now();
      cpu0 = process.cpuUsage();
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = (performance.now() - t0) / 1000;
  await runner.stop(); // includes the final commit
  const cpu = process.cpuUsage(cpu0);
  return { eventsPerS: total / s, cpuUsPerEvent: (cpu.user + cpu.system) / total };
}

/** CPU seconds of a process so far (utime + stime). */
const cpuSeconds = (pid: number) => (cpuTicks(pid) ?? NaN) / CLK_TCK;

async function latencyRun(o: Options) {
  const sessions = 200;
  const seconds = 60;
  const { config, kafka, serde, topics } = await benchKafka('latency');
  // The processor claims session owners in PostgreSQL (issue 11): a migrated database of its own.
  // Without one every batch failed its claim and was fetched again, and no score came out.
  const db = await migratedDatabase('processor_bench');
  // The processor as its own process (as deployed), so the simulator does not share its event loop.
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-processor-prof-'));
  const nodeArgs = o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const proc = spawn(process.execPath, [...nodeArgs, path.join(repoRoot(), 'dist', 'main.js'), 'process'], {
    env: {
      ...process.env,
      VIGIL_TOPIC_PREFIX: config.topicPrefix,
      VIGIL_TOPIC_PARTITIONS: '12',
      VIGIL_DATABASE_URL: db.url,
      VIGIL_TRACING: 'off',
      VIGIL_LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  const lat: number[] = [];
  const consumer = kafka.consumer({ groupId: `${config.topicPrefix}.lat`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.scores, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const { value } = await serde.decode<FatigueScored>(message.value);
      lat.push(Date.now() - value.ts);
    },
  });
  await new Promise((r) => setTimeout(r, 15_000)); // processor joined its group, partitions restored
  // Fixed cost: partitions assigned, no input at all.
  const idleCores: number[] = [];
  for (let i = 0; i < 3; i++) {
    const c0 = cpuSeconds(proc.pid!);
    await new Promise((r) => setTimeout(r, 10_000));
    idleCores.push((cpuSeconds(proc.pid!) - c0) / 10);
  }
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(rssMiB(proc.pid!) ?? NaN), 5_000);
  const publisher = new Publisher(kafka, serde, topics);
  await publisher.connect();
  // CPU per input event over each third of the run (events counted as the publisher acknowledges them).
  const thirds: { cpu: number; events: number }[] = [];
  let published = 0;
  const publish = publisher.publish.bind(publisher);
  publisher.publish = (async (topic: never, events: never[]) => {
    await publish(topic, events);
    published += events.length;
  }) as typeof publisher.publish;
  let mark = { cpu: cpuSeconds(proc.pid!), events: 0 };
  const thirdTimer = setInterval(
    () => {
      const now = { cpu: cpuSeconds(proc.pid!), events: published };
      thirds.push({ cpu: now.cpu - mark.cpu, events: now.events - mark.events });
      mark = now;
    },
    (seconds * 1000) / 3,
  );
  const loadCpu0 = cpuSeconds(proc.pid!);
  const sim = await runSimulation(publisher, {
    sessions,
    durationMs: seconds * 1000,
    speed: 'realtime',
    seed: 3,
    profile: 'mixed',
    tenantId: 'bench',
    startTs: Math.floor(Date.now() / 1000) * 1000,
  });
  clearInterval(thirdTimer);
  const loadCores = (cpuSeconds(proc.pid!) - loadCpu0) / seconds;
  const events = Object.values(sim.published).reduce((a, b) => a + b, 0);
  await publisher.disconnect();
  await new Promise((r) => setTimeout(r, 5_000));
  clearInterval(sampler);
  const processorPeakRssMiB = rssMiB(proc.pid!, 'VmHWM') ?? NaN;
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  await consumer.disconnect();
  await db.drop();
  const profiles = o.cpuProf ? summariseProfiles(profileDir, 20) : [];
  fs.rmSync(profileDir, { recursive: true, force: true });
  const s = lat.sort((a, b) => a - b);
  return {
    sessions,
    seconds,
    events,
    idleCores,
    loadCores,
    cpuUsPerEvent: thirds.filter((t) => t.events > 0).map((t) => (t.cpu * 1e6) / t.events),
    thirds,
    profiles,
    scores: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    processorPeakRssMiB,
    processorRssEvery5sMiB: rss,
  };
}
