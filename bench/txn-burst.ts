import type { Kafka, Producer } from 'kafkajs';
import { loadConfig } from '../core/config';
import { connectTransactional } from '../core/kafka';
import { cpuTicks, CLK_TCK, pidListeningOn } from './procstat';
import { patientKafka, percentile, round, spread, table, writeResults, type Spread } from './lib';
import { sleep } from './pipeline';

/**
 * `npm run bench -- txn-burst [--partitions 12] [--rounds 30] [--runs 3]`: what the processor's
 * commit burst costs, and what one transaction per process would save (issue 13 item 3).
 *
 * Windows of every session end on shared hop boundaries, so the processor's commit tick finds
 * outputs on every partition at once and commits one transaction per partition, concurrently
 * (kafkajs cannot fence per process: processors/runner.ts). This bench replays that burst: per
 * round, each of `--partitions` partitions commits 8 outputs (200 B), 8 session snapshots (4 KB,
 * compacted topic) and its input offset, the way processors/committer.ts does, in two modes:
 * - `per-partition`: one transactional producer per partition, all transactions at once (Vigil now);
 * - `per-process`: one producer, one transaction holding every partition's records and offsets
 *   (what a client with KIP-447 fencing, e.g. librdkafka, would commit; with kafkajs it is not
 *   safe, since a zombie's offsets cannot be fenced, so this measures the protocol cost only).
 * Measured per round: wall time of the burst (first begin to last commit), this process's CPU and
 * the broker's CPU (from /proc; the broker found listening on the configured port). Runs alternate
 * the modes; figures are medians of the per-run medians with their spread.
 */
interface Options {
  partitions: number;
  rounds: number;
  runs: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { partitions: 12, rounds: 30, runs: 3 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const n = Number(argv[i + 1]);
    const positive = () => {
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer`);
      i++;
      return n;
    };
    if (a === '--partitions') o.partitions = positive();
    else if (a === '--rounds') o.rounds = positive();
    else if (a === '--runs') o.runs = positive();
    else
      throw new Error(
        `unknown argument ${a}; usage: npm run bench -- txn-burst [--partitions 12] [--rounds 30] [--runs 3]`,
      );
  }
  return o;
}

type Mode = 'per-partition' | 'per-process';
interface RunResult {
  mode: Mode;
  burst_ms_p50: number;
  burst_ms_p95: number;
  client_cpu_ms_per_burst: number;
  broker_cpu_ms_per_burst: number;
}

const OUTPUTS = 8;
const SNAPSHOTS = 8;

async function runOnce(kafka: Kafka, mode: Mode, o: Options, brokerPid: number | undefined): Promise<RunResult> {
  const name = `bench-txnburst-${mode}-${Date.now().toString(36)}`;
  const admin = kafka.admin();
  await admin.connect();
  const topics = { out: `${name}.out`, snap: `${name}.snap`, in: `${name}.in` };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.out, numPartitions: o.partitions },
      { topic: topics.in, numPartitions: o.partitions },
      {
        topic: topics.snap,
        numPartitions: o.partitions,
        configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
      },
    ],
  });
  const ids =
    mode === 'per-partition' ? Array.from({ length: o.partitions }, (_, p) => [p]) : [[...Array(o.partitions).keys()]];
  const producers: Producer[] = [];
  for (let i = 0; i < ids.length; i++) producers.push(await connectTransactional(kafka, `${name}.p${i}`));
  // Built once, outside the timed bursts: the processor's records are encoded before its commit too.
  const batches = ids.map((parts) => {
    const msgs = (size: number, n: number) =>
      parts.flatMap((partition) =>
        Array.from({ length: n }, (_, k) => ({ key: `s${partition}-${k}`, value: Buffer.alloc(size, k), partition })),
      );
    return [
      { topic: topics.out, messages: msgs(200, OUTPUTS) },
      { topic: topics.snap, messages: msgs(4_000, SNAPSHOTS) },
    ];
  });
  const walls: number[] = [];
  let clientUs = 0;
  let brokerTicks = 0;
  const measured = Math.max(1, o.rounds - 5); // the first 5 rounds warm the JIT and connections
  for (let round = 0; round < o.rounds; round++) {
    const counted = round >= o.rounds - measured;
    const c0 = process.cpuUsage();
    const b0 = brokerPid ? (cpuTicks(brokerPid) ?? 0) : 0;
    const w0 = performance.now();
    await Promise.all(
      producers.map(async (producer, i) => {
        const parts = ids[i]!;
        const tx = await producer.transaction();
        await tx.sendBatch({ acks: -1, topicMessages: batches[i]! });
        await tx.sendOffsets({
          consumerGroupId: `${name}.g`,
          topics: [
            { topic: topics.in, partitions: parts.map((partition) => ({ partition, offset: String(round + 1) })) },
          ],
        });
        await tx.commit();
      }),
    );
    if (counted) {
      walls.push(performance.now() - w0);
      const c = process.cpuUsage(c0);
      clientUs += c.user + c.system;
      brokerTicks += (brokerPid ? (cpuTicks(brokerPid) ?? 0) : 0) - b0;
    }
    await sleep(200); // a commit tick apart, the broker settles
  }
  for (const p of producers) await p.disconnect();
  await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
  await admin.disconnect();
  walls.sort((a, b) => a - b);
  return {
    mode,
    burst_ms_p50: round(percentile(walls, 50)),
    burst_ms_p95: round(percentile(walls, 95)),
    client_cpu_ms_per_burst: round(clientUs / 1000 / measured),
    broker_cpu_ms_per_burst: round(((brokerTicks / CLK_TCK) * 1000) / measured),
  };
}

export async function txnBurstBench(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const config = loadConfig(process.env);
  const kafka = patientKafka('bench-txn-burst', config.kafka.brokers);
  const brokerPid = pidListeningOn(Number(config.kafka.brokers[0]?.split(':')[1] ?? 9092));
  const runs: RunResult[] = [];
  for (let r = 0; r < o.runs; r++) {
    const order: Mode[] = r % 2 === 0 ? ['per-partition', 'per-process'] : ['per-process', 'per-partition'];
    for (const mode of order) {
      const res = await runOnce(kafka, mode, o, brokerPid);
      process.stdout.write(`[txn-burst] run ${r + 1} ${mode}: ${JSON.stringify(res)}\n`);
      runs.push(res);
    }
  }
  const modes: Mode[] = ['per-partition', 'per-process'];
  type Figure = keyof Omit<RunResult, 'mode'>;
  const figures: Figure[] = ['burst_ms_p50', 'burst_ms_p95', 'client_cpu_ms_per_burst', 'broker_cpu_ms_per_burst'];
  const summaryOf = (m: Mode) =>
    Object.fromEntries(figures.map((k) => [k, spread(runs.filter((x) => x.mode === m).map((x) => x[k]))])) as Record<
      Figure,
      Spread
    >;
  const summary = { 'per-partition': summaryOf('per-partition'), 'per-process': summaryOf('per-process') };
  const ratio = (k: Figure) => (summary['per-process'][k].median / summary['per-partition'][k].median).toFixed(2);
  const one = (n: number) => n.toFixed(1);
  const s = (x: Spread) => `${one(x.median)} (${one(x.min)}-${one(x.max)})`;
  const md = [
    `Partitions: ${o.partitions}; per partition and round ${OUTPUTS} outputs of 200 B, ${SNAPSHOTS} snapshots of 4 KB, one input offset; ${o.rounds} rounds per run (first 5 not counted), ${o.runs} runs per mode, alternated. Median of the runs (min-max). Broker pid ${brokerPid ?? 'not found'}.`,
    '',
    table(
      [
        'mode',
        'transactions per burst',
        'burst wall p50 ms',
        'burst wall p95 ms',
        'client CPU ms per burst',
        'broker CPU ms per burst',
      ],
      modes.map((m) => [
        m,
        m === 'per-partition' ? o.partitions : 1,
        s(summary[m].burst_ms_p50),
        s(summary[m].burst_ms_p95),
        s(summary[m].client_cpu_ms_per_burst),
        s(summary[m].broker_cpu_ms_per_burst),
      ]),
    ),
    '',
    `per-process / per-partition: burst wall p50 ${ratio('burst_ms_p50')}, client CPU ${ratio('client_cpu_ms_per_burst')}, broker CPU ${ratio('broker_cpu_ms_per_burst')}.`,
  ].join('\n');
  writeResults('txn-burst', { options: o, runs, summary }, md);
  process.stdout.write(md + '\n');
}
