import type { Pool } from 'pg';
import { eventually, testConfig, testLogger } from '../test/support/env';
import { readAll } from '../test/support/stack';
import type { Publisher } from '../producers/publisher';
import { pipelineFixture, projectionRunner, type PipelineFixture } from '../test/support/pipeline';
import { sessionEvents } from '../producers/simulator/session';
import type { EegBandPower, SessionEvent } from '../schemas/types';
import { eegModel } from './eeg/model';
import { sessionsModel } from './sessions/model';
import { ProjectionRunner, projectionGroupOf } from './runner';
import { readModels } from './index';

/**
 * Issue 13: several read models in ONE consumer group (what `vigil project` runs), batches of the
 * topic-partitions ready together in one transaction; each `(projection, topic, partition)`
 * checkpoint still moves with its own batch's effects only.
 */
describe('projection runner: several read models in one consumer group', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let pool: Pool;
  let publisher: Publisher;
  const startTs = Date.UTC(2026, 0, 1, 8);
  // Six sessions: their keys spread over several partitions, so one fetch brings several batches.
  const plans = Array.from({ length: 6 }, (_, index) => ({
    seed: 5,
    index,
    tenantId: 'tenant-a',
    startTs,
    durationMs: 10_000,
    profile: 'alert' as const,
  }));
  const events = plans.flatMap((p) => [...sessionEvents(p)]);
  const eeg = events.filter((e) => e.topic === 'eeg').map((e) => e.event as EegBandPower);
  const sessions = events.filter((e) => e.topic === 'sessions').map((e) => e.event as SessionEvent);
  const runner = () =>
    new ProjectionRunner(
      [sessionsModel, eegModel],
      { kafka: fx.kafka, serde: fx.serde, topics: fx.topics, pool, log: testLogger(), groupPrefix: config.topicPrefix },
      Object.keys(readModels),
    );
  const checkpoints = async (projection: string, topic: string) => {
    const { rows } = await pool.query<{ partition: number; next_offset: string }>(
      `SELECT partition, next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2`,
      [projection, topic],
    );
    return Object.fromEntries(rows.map((r) => [r.partition, r.next_offset]));
  };
  const ends = async (topic: string) =>
    Object.fromEntries(
      (await fx.admin.fetchTopicOffsets(topic)).filter((e) => e.high !== '0').map((e) => [e.partition, e.high]),
    );

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    ({ pool, publisher } = fx);
  });
  afterAll(() => fx?.close());

  it('names its group after the models: one model, a set, or every read model (`postgres`)', () => {
    const all = Object.keys(readModels);
    expect(projectionGroupOf('p', ['eeg'], all)).toBe('p.projection.eeg');
    expect(projectionGroupOf('p', ['sessions', 'eeg'], all)).toBe('p.projection.eeg+sessions');
    expect(projectionGroupOf('p', [...all].reverse(), all)).toBe('p.projection.postgres');
  });

  it('applies every record of both models once, moves each model’s checkpoints to its topic’s end, and dead-letters as the model', async () => {
    await publisher.publish('sessions', sessions);
    await publisher.publish('eeg', eeg.slice(0, 50));
    const producer = fx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: fx.topics.eeg,
      messages: [{ key: sessions[0]!.session_id, value: Buffer.from('not avro') }],
    });
    await producer.disconnect();
    await publisher.publish('eeg', eeg.slice(50));

    const r = runner();
    await r.start();
    const eegEnds = await ends(fx.topics.eeg);
    const sessionEnds = await ends(fx.topics.sessions);
    const caughtUp = await eventually(
      async () => [await checkpoints('eeg', fx.topics.eeg), await checkpoints('sessions', fx.topics.sessions)],
      ([e, s]) => JSON.stringify(e) === JSON.stringify(eegEnds) && JSON.stringify(s) === JSON.stringify(sessionEnds),
      60_000,
    );
    await r.stop();

    expect(Object.keys(eegEnds).length).toBeGreaterThan(1);
    expect(caughtUp).toEqual([eegEnds, sessionEnds]);
    expect(r.applied).toBe(eeg.length + sessions.length);
    const rows = await pool.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM eeg_frames');
    expect(rows.rows[0]).toEqual({ n: eeg.length, d: eeg.length });
    const counted = await pool.query(
      `SELECT session_id, status, eeg_frame_count::int AS frames FROM sessions WHERE tenant_id = 'tenant-a' ORDER BY session_id`,
    );
    const perSession = new Map<string, number>();
    for (const e of eeg) perSession.set(e.session_id, (perSession.get(e.session_id) ?? 0) + 1);
    expect(counted.rows).toEqual(
      [...perSession.keys()].sort().map((id) => ({ session_id: id, status: 'ended', frames: perSession.get(id) })),
    );
    const dlq = await readAll(fx.kafka, fx.topics.dlq);
    expect(dlq.map((d) => [d.value!.toString(), d.headers['vigil.dlq.consumer']])).toEqual([
      ['not avro', 'projection.eeg'],
    ]);
  });

  it('resumes from the checkpoints: a single-model runner in a fresh group applies nothing again', async () => {
    const again = projectionRunner(fx, eegModel, `${config.topicPrefix}-fresh`);
    await again.start();
    await new Promise((r) => setTimeout(r, 4_000));
    await again.stop();
    expect(again.applied).toBe(0);
    expect((await pool.query('SELECT count(*)::int AS n FROM eeg_frames')).rows[0]).toEqual({ n: eeg.length });
    expect(await readAll(fx.kafka, fx.topics.dlq)).toHaveLength(1);
  });
});
