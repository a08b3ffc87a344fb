import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Kafka } from 'kafkajs';
import { loadConfig } from '../core/config';
import { repoRoot } from '../core/paths';
import { patientKafka, percentile, round, table, writeResults } from './lib';
import { sleep } from './pipeline';
import { ProcSampler, pidListeningOn } from './procstat';
import type { WorkerArgs } from './kafka-client-worker';

/**
 * `npm run bench -- kafka-client [--modes kafkajs,ckjs] [--rates 0,3500,17500] [--seconds 30]
 * [--partitions 12] [--commit-ms 100] [--ckjs <path>]`: the trade issue 13 asks to measure before
 * changing Vigil's Kafka client. For each client and input rate, an exactly-once
 * consume-transform-produce loop (bench/kafka-client-worker.ts, its own process) runs against the
 * local broker: kafkajs with one transactional producer and one transaction per partition (what
 * Vigil's processor must do without KIP-447), or @confluentinc/kafka-javascript with one producer
 * and one transaction per process (KIP-447). The bench feeds 150-byte records at the rate in 100 ms
 * ticks across the partitions and reads the output read_committed. Measured after a 5 s warm-up:
 * worker and broker CPU (cores, CPU-µs per record), transactions/s, send → readable latency
 * p50/p99, worker peak RSS. Rate 0 is the idle cost with every partition assigned.
 */
interface Options {
  modes: WorkerArgs['mode'][];
  rates: number[];
  seconds: number;
  partitions: number;
  commitMs: number;
  ckjsPath: string;
}

const WARMUP_S = 5;
const VALUE_BYTES = 150;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    modes: ['kafkajs', 'ckjs'],
    rates: [0, 3_500, 17_500],
    seconds: 30,
    partitions: 12,
    commitMs: 100,
    ckjsPath: path.join(repoRoot(), '.local', 'ckjs', 'node_modules', '@confluentinc', 'kafka-javascript'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[++i] ?? '';
    const nums = () => v.split(',').map((x) => (Number.isFinite(Number(x)) && Number(x) >= 0 ? Number(x) : NaN));
    if (a === '--modes') o.modes = v.split(',').filter((m): m is WorkerArgs['mode'] => m === 'kafkajs' || m === 'ckjs');
    else if (a === '--rates') o.rates = nums();
    else if (a === '--seconds') o.seconds = Number(v);
    else if (a === '--partitions') o.partitions = Number(v);
    else if (a === '--commit-ms') o.commitMs = Number(v);
    else if (a === '--ckjs') o.ckjsPath = path.resolve(v);
    else
      throw new Error(
        `unknown argument ${a}; usage: npm run bench -- kafka-client [--modes kafkajs,ckjs] [--rates 0,3500,17500] [--seconds 30] [--partitions 12] [--commit-ms 100] [--ckjs <path>]`,
      );
  }
  if (!o.modes.length || o.rates.some(Number.isNaN) || !(o.seconds >= 10) || !(o.partitions >= 1) || !(o.commitMs >= 1))
    throw new Error(
      'kafka-client: --modes kafkajs|ckjs, --rates non-negative numbers, --seconds >= 10, --partitions >= 1, --commit-ms >= 1',
    );
  if (o.modes.includes('ckjs') && !fs.existsSync(o.ckjsPath))
    throw new Error(
      `@confluentinc/kafka-javascript not found at ${o.ckjsPath}: run bash bench/kafka-client-setup.sh, or pass --ckjs <path>`,
    );
  return o;
}

interface Row {
  mode: WorkerArgs['mode'];
  rate: number;
  records_per_s: number;
  worker_cores: number;
  worker_cpu_us_per_record: number | null;
  kafka_cores: number;
  kafka_cpu_us_per_record: number | null;
  transactions_per_s: number;
  latency_ms: { n: number; p50: number; p99: number };
  worker_rss_max_mib: number;
}

async function runOne(o: Options, mode: WorkerArgs['mode'], rate: number): Promise<Row> {
  const config = loadConfig(process.env);
  const kafka = patientKafka('bench-kafka-client', config.kafka.brokers);
  const admin = kafka.admin();
  await admin.connect();
  const name = `bench-kclient-${mode}-${rate}-${Date.now().toString(36)}`;
  const args: WorkerArgs = {
    mode,
    brokers: config.kafka.brokers,
    inTopic: `${name}.in`,
    outTopic: `${name}.out`,
    groupId: `${name}.worker`,
    txnPrefix: `${name}.txn`,
    commitMs: o.commitMs,
    ckjsPath: o.ckjsPath,
  };
  await admin.createTopics({
    // kafkajs's own wait gives up on UNKNOWN_TOPIC_OR_PARTITION, which a busy broker answers for a
    // while after creating a topic: wait for the leaders below instead.
    waitForLeaders: false,
    topics: [args.inTopic, args.outTopic].map((topic) => ({
      topic,
      numPartitions: o.partitions,
      replicationFactor: 1,
    })),
  });
  await waitForLeaders(admin, [args.inTopic, args.outTopic], o.partitions);
  const child = spawn(
    process.execPath,
    [path.join(repoRoot(), 'dist', 'bench', 'kafka-client-worker.js'), JSON.stringify(args)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const reader = kafka.consumer({ groupId: `${name}.reader`, readUncommitted: false });
  const latencies: number[] = [];
  let measuring = false;
  try {
    // Ready when the worker's group is stable with every partition assigned.
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`worker exited ${child.exitCode}: ${out}`);
      const { groups } = await admin.describeGroups([args.groupId]);
      if (groups[0]?.state === 'Stable' && groups[0].members.length) break;
      if (Date.now() > deadline) throw new Error(`worker group not stable: ${out}`);
      await sleep(250);
    }
    await producer.connect();
    await reader.connect();
    await reader.subscribe({ topic: args.outTopic, fromBeginning: true });
    await reader.run({
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        if (measuring) for (const m of batch.messages) latencies.push(now - Number(m.value!.readBigInt64BE(0)));
      },
    });
    const kafkaPid = pidListeningOn(Number(config.kafka.brokers[0]!.split(':')[1] ?? 9092));
    const sampler = new ProcSampler(() => ({ worker: [child.pid!], ...(kafkaPid ? { kafka: [kafkaPid] } : {}) }));
    const perTick = Math.round(rate / 10);
    const filler = Buffer.alloc(VALUE_BYTES - 8, 0x61);
    let stop = false;
    const feed = (async () => {
      let seq = 0;
      for (let tick = Date.now(); !stop; tick += 100) {
        if (perTick > 0) {
          const now = Buffer.alloc(8);
          now.writeBigInt64BE(BigInt(Date.now()));
          const value = Buffer.concat([now, filler]);
          const messages = Array.from({ length: perTick }, () => {
            const p = seq++ % o.partitions;
            return { partition: p, key: `k${p}`, value };
          });
          await producer.send({ topic: args.inTopic, acks: -1, messages });
        }
        await sleep(Math.max(0, tick + 100 - Date.now()));
      }
    })();
    await sleep(WARMUP_S * 1000);
    const before = lastStats(out);
    measuring = true;
    sampler.start();
    const t0 = Date.now();
    await sleep(o.seconds * 1000);
    sampler.stop();
    measuring = false;
    const seconds = (Date.now() - t0) / 1000;
    await sleep(1_100); // the counters line that covers the end of the window
    stop = true;
    await feed;
    const after = lastStats(out);
    const s = sampler.summary(0);
    // Records made readable (committed) in the window, as the reader saw them.
    const records = latencies.length / seconds;
    const perRecord = (cores: number) => (records > 0 ? Math.round((cores * 1e6) / records) : null);
    const sorted = [...latencies].sort((a, b) => a - b);
    const row: Row = {
      mode,
      rate,
      records_per_s: Math.round(records),
      worker_cores: s.worker?.cores_mean ?? 0,
      worker_cpu_us_per_record: perRecord(s.worker?.cores_mean ?? 0),
      kafka_cores: s.kafka?.cores_mean ?? 0,
      kafka_cpu_us_per_record: perRecord(s.kafka?.cores_mean ?? 0),
      transactions_per_s: round((after.transactions - before.transactions) / seconds, 3),
      latency_ms: { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) },
      worker_rss_max_mib: s.worker?.rss_max_mib ?? 0,
    };
    process.stdout.write(`[kafka-client] ${JSON.stringify(row)}\n`);
    return row;
  } finally {
    await reader.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    if (child.exitCode === null) child.kill('SIGKILL');
    await admin.deleteTopics({ topics: [args.inTopic, args.outTopic] }).catch(() => {});
    await admin.disconnect();
  }
}

async function waitForLeaders(admin: ReturnType<Kafka['admin']>, topics: string[], partitions: number) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const meta = await admin.fetchTopicMetadata({ topics }).catch(() => undefined);
    const led = meta?.topics.every(
      (t) => t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0),
    );
    if (led) return;
    if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leaders after 90 s`);
    await sleep(500);
  }
}

/** The worker's latest counters line (it prints one every second). */
function lastStats(output: string): { records: number; transactions: number } {
  const all = [...output.matchAll(/\{"records":(\d+),"transactions":(\d+)\}/g)];
  const m = all.at(-1);
  return m ? { records: Number(m[1]), transactions: Number(m[2]) } : { records: 0, transactions: 0 };
}

export async function kafkaClientBench(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const rows: Row[] = [];
  for (const rate of o.rates) for (const mode of o.modes) rows.push(await runOne(o, mode, rate));
  const md = [
    `Exactly-once consume-transform-produce over ${o.partitions} partitions, ${VALUE_BYTES} B records fed in 100 ms ticks, a transaction at most every ${o.commitMs} ms per scope (kafkajs: per partition, one producer each; ckjs: per process, KIP-447), ${o.seconds} s measured after ${WARMUP_S} s of warm-up; one run per cell on a shared 2-core machine.`,
    '',
    table(
      [
        'client',
        'offered/s',
        'records/s',
        'worker cores',
        'worker CPU-µs/record',
        'broker cores',
        'broker CPU-µs/record',
        'transactions/s',
        'latency p50 / p99 ms',
        'worker RSS MiB',
      ],
      rows.map((r) => [
        r.mode,
        r.rate,
        r.records_per_s,
        r.worker_cores,
        r.worker_cpu_us_per_record ?? '-',
        r.kafka_cores,
        r.kafka_cpu_us_per_record ?? '-',
        r.transactions_per_s,
        r.latency_ms.n ? `${r.latency_ms.p50} / ${r.latency_ms.p99}` : '-',
        r.worker_rss_max_mib,
      ]),
    ),
  ].join('\n');
  writeResults('kafka-client', { options: o, rows }, md);
}
