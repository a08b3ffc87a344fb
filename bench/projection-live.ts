import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { repoRoot } from '../core/paths';
import { Publisher } from '../producers/publisher';
import { runSimulation } from '../producers/simulator/run';
import { benchKafka } from './setup';
import { summariseProfiles, type ProfileSummary } from './cpu-profile';
import { CLK_TCK, cpuTicks, rssMiB } from './procstat';

/**
 * The whole projection worker (`vigil project`, every read model, PostgreSQL and Redis) as its own
 * process on topics of its own, empty at first:
 * 1. idle: once every consumer group of the worker is Stable (unchanged for IDLE_SETTLE_MS), its CPU
 *    over IDLE_MS with no input: the fixed cost of the worker alone;
 * 2. light load: LIVE_SESSIONS simulated sessions in real time (all modalities) for LIVE_MS, then
 *    until the worker's PostgreSQL checkpoints of the telemetry models reach the topics' ends: its CPU
 *    over that span per input event (CPU-µs an event, fixed cost included, as the e2e harness sees it).
 * With `cpuProf`, the worker runs under `--cpu-prof` and its self-time summary is returned.
 */
const IDLE_SETTLE_MS = 5_000;
const IDLE_MS = 30_000;
const LIVE_SESSIONS = 30;
const LIVE_MS = 40_000;

export const IDLE_S = IDLE_MS / 1000;
export const LIVE_DESCRIPTION = `${LIVE_SESSIONS} simulated sessions in real time (all modalities) for ${LIVE_MS / 1000} s`;

export interface LiveRun {
  idle_cores: number;
  consumer_groups: number;
  live_events: number;
  live_events_per_s: number;
  live_cores: number;
  live_cpu_us_per_event: number;
  peak_rss_mib: number;
  profile?: ProfileSummary;
}

export async function liveRun(dbUrl: string, cpuProf: boolean): Promise<LiveRun> {
  const bench = await benchKafka('projection-live');
  const { config, kafka, serde, topics } = bench;
  const prefix = config.topicPrefix;
  const profileDir = path.join(os.tmpdir(), `${prefix}-profile`);
  const child = spawn(
    process.execPath,
    [
      ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      path.join(repoRoot(), 'dist', 'main.js'),
      'project',
    ],
    {
      env: {
        ...process.env,
        VIGIL_TOPIC_PREFIX: prefix,
        VIGIL_TOPIC_PARTITIONS: '12',
        VIGIL_DATABASE_URL: dbUrl,
        VIGIL_TRACING: 'off',
        VIGIL_LOG_LEVEL: 'warn',
        VIGIL_METRICS_PORT: '0',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const admin = kafka.admin();
  await admin.connect();
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  try {
    const groups = await settledGroups(admin, `${prefix}.projection.`);
    const t0 = performance.now();
    const c0 = cpuTicks(child.pid!)!;
    await sleep(IDLE_MS);
    const idleCores = (cpuTicks(child.pid!)! - c0) / CLK_TCK / ((performance.now() - t0) / 1000);

    const publisher = new Publisher(kafka, serde, topics);
    await publisher.connect();
    const l0 = performance.now();
    const lc0 = cpuTicks(child.pid!)!;
    const sim = await runSimulation(publisher, {
      sessions: LIVE_SESSIONS,
      durationMs: LIVE_MS,
      speed: 'realtime',
      seed: 11,
      profile: 'mixed',
      tenantId: 'bench',
      startTs: Date.now(),
    });
    await publisher.disconnect();
    const events = Object.values(sim.published).reduce((a, b) => a + b, 0);
    // Caught up: every telemetry model's checkpoints sum to its topic's record count (no transactions
    // on these topics: offsets are records). The Redis model runs alongside on the same input.
    const want = ['eeg', 'face', 'vehicle', 'game'].map((m) => [m, sim.published[m as 'eeg']] as const);
    const deadline = performance.now() + 120_000;
    for (;;) {
      const { rows } = await db.query<{ projection: string; n: string }>(
        'SELECT projection, sum(next_offset) AS n FROM projection_checkpoints GROUP BY projection',
      );
      const at = new Map(rows.map((r) => [r.projection, Number(r.n)]));
      if (want.every(([m, n]) => (at.get(m) ?? 0) >= n)) break;
      if (performance.now() > deadline) throw new Error(`live run not caught up in 120 s: ${JSON.stringify(rows)}`);
      await sleep(100);
    }
    const seconds = (performance.now() - l0) / 1000;
    const cpuS = (cpuTicks(child.pid!)! - lc0) / CLK_TCK;
    const peak = rssMiB(child.pid!, 'VmHWM') ?? NaN;
    child.kill('SIGTERM');
    await exited;
    const profile = cpuProf ? summariseProfiles(profileDir, 20)[0] : undefined;
    return {
      idle_cores: round3(idleCores),
      consumer_groups: groups,
      live_events: events,
      live_events_per_s: Math.round(events / seconds),
      live_cores: round3(cpuS / seconds),
      live_cpu_us_per_event: Math.round((cpuS * 1e6) / events),
      peak_rss_mib: peak,
      ...(profile ? { profile } : {}),
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
    await db.end().catch(() => {});
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.disconnect();
    fs.rmSync(profileDir, { recursive: true, force: true });
  }
}

/** Waits until the groups named `<prefix>...` are all Stable with members and unchanged for IDLE_SETTLE_MS; answers how many. */
async function settledGroups(
  admin: ReturnType<Awaited<ReturnType<typeof benchKafka>>['kafka']['admin']>,
  prefix: string,
) {
  const deadline = performance.now() + 120_000;
  let last = '';
  let since = performance.now();
  for (;;) {
    const ids = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    const described = ids.length ? (await admin.describeGroups(ids)).groups : [];
    const state = described
      .map((g) => `${g.groupId}:${g.state}:${g.members.length}`)
      .sort()
      .join(',');
    const stable = described.length > 0 && described.every((g) => g.state === 'Stable' && g.members.length > 0);
    if (!stable || state !== last) {
      last = state;
      since = performance.now();
    } else if (performance.now() - since >= IDLE_SETTLE_MS) return described.length;
    if (performance.now() > deadline) throw new Error(`consumer groups not settled in 120 s: ${state}`);
    await sleep(500);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round3 = (x: number) => Math.round(x * 1000) / 1000;
