import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  type Kafka,
  type Producer,
  type ProducerConfig,
} from 'kafkajs';
import { testConfig, testLogger, eventually } from '../../test/support/env';
import { kafkaFixture, readAll, type KafkaFixture } from '../../test/support/stack';
import { startVigil, type VigilProcess } from '../../test/support/processes';
import { Publisher } from '../../producers/publisher';
import type { Profile } from '../../producers/simulator/session';
import { runSimulation } from '../../producers/simulator/run';
import type { TopicNames } from '../../schemas/catalogue';
import type { FatigueScored } from '../../schemas/types';
import { ProcessorRunner } from '../runner';
import { fatigueProcessor } from './runner';

/**
 * The fatigue processor against the real broker: determinism of a replay, exactly-once across
 * SIGKILLs, scale-out and scale-in, and poison records.
 */
const config = testConfig();
const log = testLogger();
const START = Date.UTC(2026, 4, 4, 6, 0, 0);

/** Input topics shared; outputs, changelog and group per run, so runs can be compared. */
const runTopics = (fx: KafkaFixture, run: string): TopicNames => ({
  ...fx.topics,
  scores: `${fx.topics.scores}.${run}`,
  alerts: `${fx.topics.alerts}.${run}`,
  late: `${fx.topics.late}.${run}`,
  dlq: `${fx.topics.dlq}.${run}`,
  changelog: `${fx.topics.changelog}.${run}`,
});

async function createRunTopics(fx: KafkaFixture, t: TopicNames) {
  const extra = [t.scores, t.alerts, t.late, t.dlq];
  await fx.admin.createTopics({
    waitForLeaders: true,
    topics: [
      ...extra.map((topic) => ({ topic, numPartitions: 3 })),
      { topic: t.changelog, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    ],
  });
}

/** Per key, the output values in offset order (Kafka orders per key only), hex-encoded. */
async function perKey(kafka: Kafka, topic: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const records = await readAll(kafka, topic);
  records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  for (const r of records) (out[r.key!.toString()] ??= []).push(r.value ? r.value.toString('hex') : '');
  return out;
}

/** Per key, the decoded output values in offset order (readable diffs on failure). */
async function decodedPerKey(fx: KafkaFixture, topic: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  const records = await readAll(fx.kafka, topic);
  records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  for (const r of records) (out[r.key!.toString()] ??= []).push((await fx.serde.decode(r.value)).value);
  return out;
}

async function publishSessions(
  fx: KafkaFixture,
  n: number,
  durationMs: number,
  seed: number,
  profile: Profile | 'mixed',
) {
  const publisher = new Publisher(fx.kafka, fx.serde, fx.topics);
  await publisher.connect();
  const { sessionIds } = await runSimulation(publisher, {
    sessions: n,
    durationMs,
    speed: 'max',
    seed,
    profile,
    tenantId: 'tenant-f',
    startTs: START,
  });
  await publisher.disconnect();
  return sessionIds;
}

async function endOf(fx: KafkaFixture, topic: string) {
  return (await fx.admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
}

describe('fatigue processor runner', () => {
  let fx: KafkaFixture;
  let sessionIds: string[];
  beforeAll(async () => {
    fx = await kafkaFixture(config);
    sessionIds = await publishSessions(fx, 3, 6 * 60_000, 21, 'mixed');
  });
  afterAll(() => fx?.close());

  const runToEnd = async (run: string, kafka: Kafka = fx.kafka) => {
    const topics = runTopics(fx, run);
    await createRunTopics(fx, topics);
    const runner = new ProcessorRunner(fatigueProcessor, {
      kafka,
      serde: fx.serde,
      topics,
      log,
      groupPrefix: `${config.topicPrefix}.${run}`,
    });
    await runner.start();
    // Done when every session's SessionEnded has been applied: its state is tombstoned in the changelog.
    await eventually(
      async () => await perKey(fx.kafka, topics.changelog),
      (c) => sessionIds.every((s) => c[s]?.at(-1) === ''),
      90_000,
    ).catch(() => undefined);
    await runner.stop();
    return { topics, runner };
  };

  it('gives byte-identical scores and alerts per session when the same input is replayed', async () => {
    const a = await runToEnd('a');
    const b = await runToEnd('b');
    const [scoresA, scoresB, alertsA, alertsB] = await Promise.all([
      perKey(fx.kafka, a.topics.scores),
      perKey(fx.kafka, b.topics.scores),
      perKey(fx.kafka, a.topics.alerts),
      perKey(fx.kafka, b.topics.alerts),
    ]);
    // 6 minutes of event time → a score every 5 s once the first window has data.
    for (const s of sessionIds) expect(scoresA[s]?.length ?? 0).toBeGreaterThan(60);
    expect(scoresB).toEqual(scoresA);
    expect(alertsB).toEqual(alertsA);
    expect(Object.keys(alertsA).length).toBeGreaterThan(0); // the severe session raises alerts
    expect(a.runner.metrics.late).toBe(0);
  });

  it('restores a partition whose producer was cut mid-commit and still writes exactly the uninterrupted output', async () => {
    // The broker going away during EndTxn leaves kafkajs's transactional producer in COMMITTING with
    // an unknown outcome (here: the commit landed), and every later beginTransaction refused. The
    // runner must not retry the same content (duplicates) nor stall: it restores the partition.
    let cuts = 0;
    let armed = false;
    const cutOnce = (producer: Producer): Producer => {
      let broken = false;
      let seen = 0;
      const transaction = producer.transaction.bind(producer);
      producer.transaction = async () => {
        if (broken)
          throw new KafkaJSNonRetriableError(
            'Transaction state exception: Cannot call "beginTransaction" in state "COMMITTING"',
          );
        const tx = await transaction();
        // The first commit of the run (a run here takes two or three per partition).
        if (++seen === 1 && !armed) {
          armed = true;
          const commit = tx.commit.bind(tx);
          tx.commit = async () => {
            await commit();
            broken = true;
            cuts++;
            throw new KafkaJSConnectionError('Connection closed while committing');
          };
        }
        return tx;
      };
      return producer;
    };
    const faulty = new Proxy(fx.kafka, {
      get(target, prop) {
        if (prop === 'producer') return (opts: ProducerConfig) => cutOnce(target.producer(opts));
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const reference = await runToEnd('ref-cut');
    const { topics } = await runToEnd('cut', faulty);
    expect(cuts).toBe(1);
    expect(await perKey(fx.kafka, topics.scores)).toEqual(await perKey(fx.kafka, reference.topics.scores));
    expect(await perKey(fx.kafka, topics.alerts)).toEqual(await perKey(fx.kafka, reference.topics.alerts));
  });

  it('scores every window once, in order, with no gap', async () => {
    const topics = runTopics(fx, 'a');
    const records = await readAll(fx.kafka, topics.scores);
    const bySession = new Map<string, number[]>();
    for (const r of records) {
      const { value } = await fx.serde.decode<FatigueScored>(r.value);
      bySession.set(value.session_id, [...(bySession.get(value.session_id) ?? []), value.window_end_ts]);
    }
    for (const ends of bySession.values()) {
      const steps = new Set(ends.slice(1).map((e, i) => e - ends[i]!));
      expect([...steps]).toEqual([5_000]);
    }
  });

  it('dead-letters a poison record and keeps the partition flowing', async () => {
    const topics = runTopics(fx, 'poison');
    await createRunTopics(fx, topics);
    const producer = fx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: fx.topics.face,
      messages: [
        { key: sessionIds[0]!, value: Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 1]) },
        { key: sessionIds[0]!, value: Buffer.from('{"not":"avro"}') },
      ],
    });
    await producer.disconnect();
    const runner = new ProcessorRunner(fatigueProcessor, {
      kafka: fx.kafka,
      serde: fx.serde,
      topics,
      log,
      groupPrefix: `${config.topicPrefix}.poison`,
    });
    await runner.start();
    const dlq = await eventually(
      () => readAll(fx.kafka, topics.dlq).catch(() => []),
      (d) => d.length >= 2,
      60_000,
    );
    await eventually(
      () => endOf(fx, topics.scores),
      (n) => n > 100,
      60_000,
    );
    await runner.stop();
    expect(dlq.map((d) => d.headers['vigil.dlq.error.code']).sort()).toEqual(['EVENT_UNDECODABLE', 'SCHEMA_UNKNOWN']);
    expect(dlq.every((d) => d.headers['vigil.dlq.source.topic'] === fx.topics.face)).toBe(true);
  });
});

describe('fatigue processor as processes', () => {
  const procConfig = testConfig();
  let fx: KafkaFixture;
  const running: VigilProcess[] = [];
  const env = {
    VIGIL_TOPIC_PREFIX: procConfig.topicPrefix,
    VIGIL_TOPIC_PARTITIONS: '3',
    VIGIL_TRACING: 'off',
    VIGIL_LOG_LEVEL: 'warn',
  };
  beforeAll(async () => {
    fx = await kafkaFixture(procConfig);
  });
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await fx?.close();
  });
  const start = (args: string[]) => {
    const p = startVigil(args, env);
    running.push(p);
    return p;
  };

  it('writes exactly the output of an uninterrupted run despite SIGKILLs while the simulator runs, and while instances come and go', async () => {
    const sim = start([
      'simulate',
      '--sessions',
      '6',
      '--duration',
      '45s',
      '--speed',
      'realtime',
      '--seed',
      '77',
      '--start',
      '2026-05-05T06:00:00Z',
      '--profile',
      'severe',
    ]);
    let a = start(['process']);
    const b = start(['process']); // scale-out: two instances share the partitions
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 8_000));
      a.child.kill('SIGKILL');
      await a.exited;
      a = start(['process']);
    }
    b.child.kill('SIGTERM'); // scale-in: one instance leaves cleanly
    expect(await b.exited).toBe(0);
    expect(await sim.exited).toBe(0);
    const ids = /sessions: (.+)/.exec(sim.output())![1]!.split(' ');
    await eventually(
      async () => perKey(fx.kafka, fx.topics.changelog),
      (c) => ids.every((s) => c[s]?.at(-1) === ''),
      90_000,
    );
    a.child.kill('SIGTERM');
    await a.exited;

    // Reference: an uninterrupted in-process run over the same (now complete) input.
    const ref = runTopics(fx, 'ref');
    await createRunTopics(fx, ref);
    const runner = new ProcessorRunner(fatigueProcessor, {
      kafka: fx.kafka,
      serde: fx.serde,
      topics: ref,
      log,
      groupPrefix: `${procConfig.topicPrefix}.ref`,
    });
    await runner.start();
    await eventually(
      async () => perKey(fx.kafka, ref.changelog),
      (c) => ids.every((s) => c[s]?.at(-1) === ''),
      90_000,
    );
    await runner.stop();

    const [liveScores, refScores, liveAlerts, refAlerts] = await Promise.all([
      decodedPerKey(fx, fx.topics.scores),
      decodedPerKey(fx, ref.scores),
      decodedPerKey(fx, fx.topics.alerts),
      decodedPerKey(fx, ref.alerts),
    ]);
    for (const s of ids) expect(liveScores[s]?.length ?? 0).toBeGreaterThan(5);
    expect(liveScores).toEqual(refScores);
    expect(liveAlerts).toEqual(refAlerts);
    expect(await endOf(fx, fx.topics.late)).toBe(0);
  }, 300_000);
});
