import { SessionOwners } from '../core/session-owners';
import { sessionIdOf } from '../producers/simulator/session';
import { randomUUID } from 'node:crypto';
import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  type Kafka,
  type Producer,
  type ProducerConfig,
} from 'kafkajs';
import { testConfig, testLogger, eventually, processEnv } from '../test/support/env';
import { kafkaFixture, readAll, type KafkaFixture } from '../test/support/stack';
import { processGroup, type VigilProcessGroup } from '../test/support/processes';
import { migratedDatabase } from '../test/support/database';
import { pipelineFixture, type PipelineFixture } from '../test/support/pipeline';
import { Publisher } from '../producers/publisher';
import type { Profile } from '../producers/simulator/session';
import { runSimulation } from '../producers/simulator/run';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import type { FaceFrame, FatigueScored } from '../schemas/types';
import { partitionOfKey } from '../projections/replay/export';
import { ProcessorRunner } from './runner';
import { connectTransactional } from '../core/kafka';
import { fatigueProcessor } from './fatigue/keyed-processor';
import { decodeSnapshot } from './snapshot-codec';

/**
 * The fatigue processor against the real broker: determinism of a replay, exactly-once across
 * SIGKILLs, scale-out and scale-in, and poison records.
 */
const config = testConfig();
const log = testLogger();
/**
 * Near now: the input topics stamp records with the broker's append time (LogAppendTime) and the
 * runner refuses a ts more than 24 h behind it (or 60 s ahead), so a fixed date would soon be refused.
 * Whole minutes, 30 minutes ago: every run of the file uses one START, so its runs compare.
 */
const START = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;

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

/**
 * Sessions whose SessionEnded has been applied: their latest changelog entry holds no state (an ended
 * session keeps only its owner, so another tenant cannot take its id over), or is a tombstone.
 */
async function endedSessions(kafka: Kafka, changelog: string): Promise<Set<string>> {
  const latest = new Map<string, Buffer | null>();
  for (const r of await readAll(kafka, changelog)) latest.set(r.key!.toString(), r.value);
  const ended = new Set<string>();
  for (const [session, value] of latest) {
    if (value === null || decodeSnapshot(value).state === undefined) ended.add(session);
  }
  return ended;
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
    // Done when every session's SessionEnded has been applied: its changelog entry keeps only the owner.
    await eventually(
      () => endedSessions(fx.kafka, topics.changelog),
      (ended) => sessionIds.every((s) => ended.has(s)),
      90_000,
    ).catch(() => undefined);
    await runner.stop();
    return { topics, runner };
  };

  /**
   * Runs `run` once undisturbed and once with every producer the runner makes passed through `wrap`
   * (a fault injected into its transactions); the scores and alerts of both must be the same.
   */
  const expectOutputOfUninterruptedRun = async (
    run: string,
    wrap: (producer: Producer, opts: ProducerConfig) => Producer,
  ) => {
    const faulty = new Proxy(fx.kafka, {
      get(target, prop) {
        if (prop === 'producer') return (opts: ProducerConfig) => wrap(target.producer(opts), opts);
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const reference = await runToEnd(`ref-${run}`);
    const { topics } = await runToEnd(run, faulty);
    expect(await perKey(fx.kafka, topics.scores)).toEqual(await perKey(fx.kafka, reference.topics.scores));
    expect(await perKey(fx.kafka, topics.alerts)).toEqual(await perKey(fx.kafka, reference.topics.alerts));
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
      const transaction = producer.transaction.bind(producer);
      producer.transaction = async () => {
        if (broken)
          throw new KafkaJSNonRetriableError(
            'Transaction state exception: Cannot call "beginTransaction" in state "COMMITTING"',
          );
        const tx = await transaction();
        // The first commit of the run (a run here takes two or three per partition).
        const commit = tx.commit.bind(tx);
        tx.commit = async () => {
          await commit();
          if (armed) return;
          armed = true;
          broken = true;
          cuts++;
          throw new KafkaJSConnectionError('Connection closed while committing');
        };
        return tx;
      };
      return producer;
    };
    await expectOutputOfUninterruptedRun('cut', (p) => cutOnce(p));
    expect(cuts).toBe(1);
  });

  it('restores a partition fenced by another holder of its transactional id while it stays assigned, and writes exactly the uninterrupted output', async () => {
    // What a member meets when another member took its partition over in a rebalance it did not see
    // end (after a broker failover): its producer is fenced although its own assignment still lists
    // the partition. It must neither stall (drop the partition for good) nor emit twice.
    let fenced = 0;
    const fenceFirstCommit = (producer: Producer, opts: ProducerConfig): Producer => {
      const transaction = producer.transaction.bind(producer);
      producer.transaction = async () => {
        const tx = await transaction();
        const commit = tx.commit.bind(tx);
        // The first commit of the run (the empty transaction that registers the id is aborted, not committed).
        tx.commit = async () => {
          if (fenced === 0 && opts.transactionalId) {
            fenced++;
            // Another holder of the id: InitProducerId bumps the epoch and aborts the open transaction.
            await (await connectTransactional(fx.kafka, opts.transactionalId)).disconnect();
          }
          await commit();
        };
        return tx;
      };
      return producer;
    };
    await expectOutputOfUninterruptedRun('fenced', fenceFirstCommit);
    expect(fenced).toBe(1);
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
    expect(dlq.map((d) => d.headers['vigil.dlq.reason']).sort()).toEqual(['event_undecodable', 'schema_unknown']);
    expect(dlq.every((d) => d.headers['vigil.dlq.source.topic'] === fx.topics.face)).toBe(true);
  });
});

describe('fatigue processor as processes', () => {
  const procConfig = testConfig();
  // `vigil process` claims session owners in PostgreSQL (session_owners), as the gateway and the projections do.
  let fx: PipelineFixture;
  let vigil: VigilProcessGroup | undefined;
  beforeAll(async () => {
    fx = await pipelineFixture(procConfig);
    vigil = processGroup(processEnv(procConfig, { VIGIL_DATABASE_URL: fx.databaseUrl }));
  });
  afterAll(async () => {
    await vigil?.stopAll('SIGKILL');
    await fx?.close();
  });
  const start = (args: string[]) => vigil!.start(args);

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
      new Date(START).toISOString(), // near now: LogAppendTime inputs refuse a ts 24 h old
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
      () => endedSessions(fx.kafka, fx.topics.changelog),
      (ended) => ids.every((s) => ended.has(s)),
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
      () => endedSessions(fx.kafka, ref.changelog),
      (ended) => ids.every((s) => ended.has(s)),
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

/**
 * Issue 11, straight to Kafka (past the gateway and the producer library: the raw serde and a plain
 * kafkajs producer): records of another tenant naming a live session, frames of another session
 * stamped a year ahead or behind on the same partition, and values outside their physical range.
 * Each is dead-lettered with its reason, and tenant A's sessions score and alert exactly as in a run
 * of the same input without them. Every case has its own topic prefix, so its own inputs and group.
 */
describe('fatigue processor trust boundary', () => {
  const SIM = {
    sessions: 2,
    durationMs: 3 * 60_000,
    speed: 'max',
    seed: 31,
    profile: 'severe',
    tenantId: 'tenant-a',
    startTs: START,
  } as const;
  /** The hostile records are written when A's face frames reach this event time: mid-session. */
  const INJECT_AT = START + 90_000;
  const YEAR = 365 * 24 * 3_600_000;
  const fixtures: KafkaFixture[] = [];
  let reference: Outputs;
  afterAll(async () => {
    for (const fx of fixtures) await fx.close();
  });

  interface Outputs {
    sessionIds: string[];
    scores: Record<string, unknown[]>;
    alerts: Record<string, unknown[]>;
    dlq: Awaited<ReturnType<typeof readAll>>;
    changelogKeys: Set<string>;
  }

  const fixture = async () => {
    const c = testConfig();
    const fx = await kafkaFixture(c);
    fixtures.push(fx);
    return { fx, prefix: c.topicPrefix, partitions: c.kafka.partitions };
  };

  /**
   * Tenant A's simulated sessions. `inject` runs once, when the first face frames at or after
   * INJECT_AT are handed over: after everything before them is acknowledged and before they (and
   * anything after them) are published, so the hostile records sit in the middle of A's input.
   */
  async function publishA(fx: KafkaFixture, inject?: (session: string, ts: number) => Promise<void>) {
    const publisher = new Publisher(fx.kafka, fx.serde, fx.topics);
    await publisher.connect();
    let gate: Promise<void> | undefined;
    const gated = new Proxy(publisher, {
      get(target, prop) {
        if (prop === 'publish') {
          return (key: TopicKey, events: { session_id: string; ts: number }[]) => {
            if (inject && !gate && key === 'face') {
              const first = events.find((e) => e.ts >= INJECT_AT);
              if (first)
                gate = (async () => {
                  await target.flush();
                  await inject(first.session_id, first.ts);
                })();
            }
            return gate ? gate.then(() => target.publish(key, events as never)) : target.publish(key, events as never);
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const { sessionIds } = await runSimulation(gated, SIM);
    await publisher.disconnect();
    if (inject) expect(gate).toBeDefined();
    return sessionIds;
  }

  /** Encoded with the raw serde (schema only, no rule table) and sent with a plain producer. */
  async function sendRaw(fx: KafkaFixture, key: TopicKey, values: { session_id: string }[]) {
    const producer = fx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: fx.topics[key],
      acks: -1,
      messages: values.map((v) => ({ key: v.session_id, value: fx.serde.encode(key, v as never) })),
    });
    await producer.disconnect();
  }

  const frame = (o: { tenant: string; session: string; ts: number; seq: number; closure?: number }): FaceFrame => ({
    event_id: randomUUID(),
    tenant_id: o.tenant,
    session_id: o.session,
    ts: o.ts,
    device_id: 'cam-hostile',
    seq: o.seq,
    face_detected: true,
    eye_closure: o.closure ?? 0.95,
    mouth_open: 0.1,
    head_pitch_deg: 0,
    head_yaw_deg: 0,
    head_roll_deg: 0,
  });

  /** 4 s of closed eyes at 10 Hz from `ts` (a microsleep, were it applied). */
  const closedEyes = (tenant: string, session: string, ts: number, n = 40) =>
    Array.from({ length: n }, (_, i) => frame({ tenant, session, ts: ts + 50 + 100 * i, seq: i }));

  /** Runs the processor over the fixture's topics until A's sessions ended and `dlqCount` records are dead-lettered. */
  async function runOver(
    fx: KafkaFixture,
    prefix: string,
    sessionIds: string[],
    dlqCount: number,
    owners?: SessionOwners,
  ): Promise<Outputs> {
    const runner = new ProcessorRunner(fatigueProcessor, {
      kafka: fx.kafka,
      serde: fx.serde,
      topics: fx.topics,
      log,
      groupPrefix: prefix,
      owners,
    });
    await runner.start();
    try {
      await eventually(
        () => endedSessions(fx.kafka, fx.topics.changelog),
        (ended) => sessionIds.every((s) => ended.has(s)),
        90_000,
      );
      const dlq = await eventually(
        () => readAll(fx.kafka, fx.topics.dlq),
        (d) => d.length >= dlqCount,
        30_000,
      );
      const pick = (all: Record<string, unknown[]>) => Object.fromEntries(sessionIds.map((s) => [s, all[s] ?? []]));
      const changelogKeys = new Set((await readAll(fx.kafka, fx.topics.changelog)).map((r) => r.key!.toString()));
      return {
        sessionIds,
        scores: pick(await decodedPerKey(fx, fx.topics.scores)),
        alerts: pick(await decodedPerKey(fx, fx.topics.alerts)),
        dlq,
        changelogKeys,
      };
    } finally {
      await runner.stop();
    }
  }

  /** A's outputs equal the undisturbed run's, value for value. */
  const expectUndisturbed = (out: Outputs) => {
    expect(out.sessionIds).toEqual(reference.sessionIds);
    expect(out.scores).toEqual(reference.scores);
    expect(out.alerts).toEqual(reference.alerts);
  };

  const reasons = (dlq: Outputs['dlq']) => dlq.map((d) => d.headers['vigil.dlq.reason']);

  beforeAll(async () => {
    const { fx, prefix } = await fixture();
    const sessionIds = await publishA(fx);
    reference = await runOver(fx, prefix, sessionIds, 0);
    expect(reference.dlq).toEqual([]);
    // The undisturbed run scores both sessions, through and after INJECT_AT, and raises alerts.
    for (const s of sessionIds) {
      const ends = reference.scores[s]!.map((x) => (x as FatigueScored).window_end_ts);
      expect(ends.length).toBeGreaterThan(25);
      expect(Math.max(...ends)).toBeGreaterThan(INJECT_AT + 60_000);
    }
    expect(Object.values(reference.alerts).flat().length).toBeGreaterThan(0);
  }, 120_000);

  it('dead-letters records of tenant B naming a session of tenant A (live and ended) as tenant_mismatch; A is untouched', async () => {
    const { fx, prefix } = await fixture();
    let victim = '';
    const sessionIds = await publishA(fx, async (session, ts) => {
      victim = session;
      // 4 s of closed eyes for A's live session, from tenant B's device: a microsleep alert, were it applied
      await sendRaw(fx, 'face', closedEyes('tenant-b', session, ts));
    });
    // and one more after A's session ended: the owner is remembered, the id cannot be taken over
    await sendRaw(fx, 'face', closedEyes('tenant-b', victim, START + SIM.durationMs + 5_000, 1));
    const out = await runOver(fx, prefix, sessionIds, 41);
    expect(reasons(out.dlq)).toEqual(Array(41).fill('tenant_mismatch'));
    expect(
      out.dlq.every((d) => d.key?.toString() === victim && d.headers['vigil.dlq.source.topic'] === fx.topics.face),
    ).toBe(true);
    expect(out.dlq[0]!.headers['vigil.dlq.error.code']).toBe('TENANT_MISMATCH');
    expectUndisturbed(out);
  }, 120_000);

  it("with the shared session owners, dead-letters tenant B's records for A's session claimed at the gateway even when B's come first", async () => {
    const { fx, prefix } = await fixture();
    const db = await migratedDatabase({ poolMax: 2 });
    const { pool } = db;
    try {
      const owners = new SessionOwners(pool);
      const ids = Array.from({ length: SIM.sessions }, (_, i) => sessionIdOf(SIM.seed, i));
      // A's device claimed its sessions at the gateway; B writes straight to Kafka before A's first record.
      await owners.claim(ids.map((s) => ({ session_id: s, tenant_id: SIM.tenantId })));
      await sendRaw(fx, 'face', closedEyes('tenant-b', ids[0]!, START - 10_000));
      const sessionIds = await publishA(fx);
      expect(sessionIds).toEqual(ids);
      const out = await runOver(fx, prefix, sessionIds, 40, new SessionOwners(pool));
      expect(reasons(out.dlq)).toEqual(Array(40).fill('tenant_mismatch'));
      expectUndisturbed(out);
    } finally {
      await db.close();
    }
  }, 120_000);

  it("dead-letters frames of another session stamped a year ahead or behind as ts_out_of_window; they do not end A's sessions", async () => {
    const { fx, prefix, partitions } = await fixture();
    let hostile: string[] = [];
    const sessionIds = await publishA(fx, async (session) => {
      // Fresh sessions of tenant B on A's partition: the partition's clock is the one a forged ts would move.
      const target = partitionOfKey(session, partitions);
      hostile = Array.from({ length: 200 }, (_, i) => `tenant-b-session-${i}`)
        .filter((id) => partitionOfKey(id, partitions) === target)
        .slice(0, 2);
      expect(hostile).toHaveLength(2);
      const now = Date.now();
      await sendRaw(fx, 'face', [
        ...closedEyes('tenant-b', hostile[0]!, now + YEAR, 30),
        ...closedEyes('tenant-b', hostile[1]!, now - YEAR, 30),
      ]);
    });
    const out = await runOver(fx, prefix, sessionIds, 60);
    expect(reasons(out.dlq)).toEqual(Array(60).fill('ts_out_of_window'));
    expect(new Set(out.dlq.map((d) => d.key?.toString()))).toEqual(new Set(hostile));
    // No state for B's sessions; A's active alerts were not cleared with session_ended at the jump,
    // A kept its baselines and went on scoring: its outputs are the undisturbed run's.
    for (const id of hostile) expect(out.changelogKeys.has(id)).toBe(false);
    expectUndisturbed(out);
  }, 120_000);

  it('dead-letters values outside their physical range (eye_closure 5.0, -1; ts 8.7e15, 0) as rule_violation; A is untouched', async () => {
    const { fx, prefix } = await fixture();
    const sessionIds = await publishA(fx, async (session, ts) => {
      await sendRaw(fx, 'face', [
        frame({ tenant: 'tenant-a', session, ts: ts + 10, seq: 1, closure: 5.0 }),
        frame({ tenant: 'tenant-a', session, ts: ts + 20, seq: 2, closure: -1 }),
        frame({ tenant: 'tenant-a', session, ts: 8.7e15, seq: 3 }),
        frame({ tenant: 'tenant-a', session, ts: 0, seq: 4 }),
      ]);
    });
    const out = await runOver(fx, prefix, sessionIds, 4);
    expect(reasons(out.dlq)).toEqual(Array(4).fill('rule_violation'));
    expect(out.dlq.map((d) => d.headers['vigil.dlq.error.message'])).toEqual([
      expect.stringMatching(/^face: eye_closure must be a finite number in \[0, 1\], got 5$/),
      expect.stringMatching(/^face: eye_closure must be a finite number in \[0, 1\], got -1$/),
      expect.stringMatching(/^face: ts must be an integer of ms since the Unix epoch/),
      expect.stringMatching(/^face: ts must be an integer of ms since the Unix epoch/),
    ]);
    expectUndisturbed(out);
  }, 120_000);
});
