import { spawn } from 'node:child_process';
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
import { peakRssMiB, percentile, round, spread, table, writeResults } from './lib';
import { rssMiB } from './procstat';

/**
 * Processor throughput and latency.
 * 1. Throughput: input topics pre-loaded with simulator output (max speed); one ProcessorRunner
 *    instance from offset 0 (decode, merge, model, transactions) against a raw kafkajs eachBatch
 *    consumer that only decodes the same records, alternating, in the same process and run.
 * 2. Latency: a real-time run of 200 sessions; for each score, wall time when it is readable
 *    (read_committed) minus its window end (its `ts`), p50/p95/p99.
 */
const SESSIONS = 40;
const DURATION_MS = 5 * 60_000;
const RUNS = 2;
const inputs: TopicKey[] = ['sessions', 'eeg', 'face', 'vehicle', 'game', 'commands'];

export async function processorBench(): Promise<void> {
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
    proc.push(await processorRun(kafka, serde, topics, total, `${config.topicPrefix}.proc${r}`));
  }
  const ratio = proc.map((p, i) => p / raw[i]!);
  const latency = await latencyRun();
  const json = {
    preloaded_events: total,
    sessions: SESSIONS,
    event_time_per_session_s: DURATION_MS / 1000,
    raw_decode_events_per_s: spread(raw),
    processor_events_per_s: spread(proc),
    processor_to_raw_ratio: spread(ratio),
    realtime_latency_ms: latency,
    peak_rss_mib: peakRssMiB(),
    goal: 'processor >= 60% of raw decode; latency reported',
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
      `\nPeak RSS: the processor process in the real-time run ${latency.processorPeakRssMiB} MiB (RSS every 5 s: ${latency.processorRssEvery5sMiB.join(', ')}); the benchmark process (simulator, in-process runners of the throughput part, consumers) ${json.peak_rss_mib} MiB.`,
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
): Promise<number> {
  const runner = new ProcessorRunner(fatigueProcessor, {
    kafka,
    serde,
    topics,
    log: createLogger({ level: 'warn', role: 'bench' }),
    groupPrefix: group,
  });
  let t0 = 0;
  await runner.start();
  while (runner.metrics.recordsIn < total) {
    if (!t0 && runner.metrics.recordsIn > 0) t0 = performance.now();
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = (performance.now() - t0) / 1000;
  await runner.stop();
  return total / s;
}

async function latencyRun() {
  const sessions = 200;
  const seconds = 60;
  const { config, kafka, serde, topics } = await benchKafka('latency');
  // The processor as its own process (as deployed), so the simulator does not share its event loop.
  const proc = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'main.js'), 'process'], {
    env: {
      ...process.env,
      VIGIL_TOPIC_PREFIX: config.topicPrefix,
      VIGIL_TOPIC_PARTITIONS: '12',
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
  await new Promise((r) => setTimeout(r, 5_000)); // processor joined its group
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(rssMiB(proc.pid!) ?? NaN), 5_000);
  const publisher = new Publisher(kafka, serde, topics);
  await publisher.connect();
  await runSimulation(publisher, {
    sessions,
    durationMs: seconds * 1000,
    speed: 'realtime',
    seed: 3,
    profile: 'mixed',
    tenantId: 'bench',
    startTs: Math.floor(Date.now() / 1000) * 1000,
  });
  await publisher.disconnect();
  await new Promise((r) => setTimeout(r, 5_000));
  clearInterval(sampler);
  const processorPeakRssMiB = rssMiB(proc.pid!, 'VmHWM') ?? NaN;
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  await consumer.disconnect();
  const s = lat.sort((a, b) => a - b);
  return {
    sessions,
    seconds,
    scores: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    processorPeakRssMiB,
    processorRssEvery5sMiB: rss,
  };
}
