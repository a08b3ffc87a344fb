import { Pool } from 'pg';
import { eventually, testConfig, testLogger } from '../test/support/env';
import { createTestDatabase } from '../test/support/postgres';
import { kafkaFixture, readAll, type KafkaFixture } from '../test/support/stack';
import { migrate } from '../core/migrate';
import { Publisher } from '../producers/publisher';
import { sessionEvents } from '../producers/simulator/session';
import type { EegBandPower, SessionEvent } from '../schemas/types';
import { ProjectionRunner } from './runner';
import { eegModel } from './eeg/model';
import { sessionsModel } from './sessions/model';

describe('projection runner (Kafka → PostgreSQL, checkpoint in the same transaction)', () => {
  const config = testConfig();
  const log = testLogger();
  let fx: KafkaFixture;
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let publisher: Publisher;
  const startTs = Date.UTC(2026, 0, 1, 8);
  const plan = { seed: 3, index: 0, tenantId: 'tenant-a', startTs, durationMs: 20_000, profile: 'drowsy' as const };
  const events = [...sessionEvents(plan)];
  const sessionId = events[0]!.event.session_id;
  const eeg = events.filter((e) => e.topic === 'eeg').map((e) => e.event as EegBandPower);
  const sessions = events.filter((e) => e.topic === 'sessions').map((e) => e.event as SessionEvent);
  const runner = (groupPrefix: string, model = eegModel) =>
    new ProjectionRunner(model, { kafka: fx.kafka, pool, serde: fx.serde, topics: fx.topics, log, groupPrefix });

  beforeAll(async () => {
    fx = await kafkaFixture(config);
    db = await createTestDatabase();
    await migrate({ database: db.url, log });
    pool = new Pool({ connectionString: db.url, max: 4 });
    publisher = new Publisher(fx.kafka, fx.serde, fx.topics);
    await publisher.connect();
  });
  afterAll(async () => {
    await publisher?.disconnect();
    await pool?.end();
    await db?.drop();
    await fx?.close();
  });

  const sessionRow = async () =>
    (
      await pool.query(
        'SELECT status, driver_id, eeg_frame_count::int AS frames, first_ts, last_ts FROM sessions WHERE session_id = $1',
        [sessionId],
      )
    ).rows[0];

  it('writes every frame once and the session counters, and moves the checkpoint to the end of the topic', async () => {
    await publisher.publish('sessions', sessions);
    await publisher.publish('eeg', eeg.slice(0, 100));
    // A poison record between good ones: not Avro at all.
    const producer = fx.kafka.producer();
    await producer.connect();
    await producer.send({ topic: fx.topics.eeg, messages: [{ key: sessionId, value: Buffer.from('not avro') }] });
    await producer.disconnect();
    await publisher.publish('eeg', eeg.slice(100));

    const eegRunner = runner(config.topicPrefix);
    const sessionsRunner = runner(config.topicPrefix, sessionsModel);
    await Promise.all([eegRunner.start(), sessionsRunner.start()]);
    const row = await eventually(sessionRow, (r) => r?.frames === eeg.length && r?.status === 'ended');
    await Promise.all([eegRunner.stop(), sessionsRunner.stop()]);

    expect(row).toEqual({
      status: 'ended',
      driver_id: 'driver-0',
      frames: eeg.length,
      first_ts: new Date(eeg[0]!.ts),
      last_ts: new Date(eeg.at(-1)!.ts),
    });
    const rows = await pool.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM eeg_frames');
    expect(rows.rows[0]).toEqual({ n: eeg.length, d: eeg.length });

    const ends = await fx.admin.fetchTopicOffsets(fx.topics.eeg);
    const cps = await pool.query(
      `SELECT partition, next_offset FROM projection_checkpoints WHERE projection = 'eeg' AND topic = $1`,
      [fx.topics.eeg],
    );
    const byPartition = Object.fromEntries(cps.rows.map((r) => [r.partition, r.next_offset]));
    for (const p of ends.filter((e) => e.high !== '0')) expect(byPartition[p.partition]).toBe(p.high);
  });

  it('dead-letters the poison record with its source and reason, keeping its bytes', async () => {
    const dlq = await readAll(fx.kafka, fx.topics.dlq);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.value!.toString()).toBe('not avro');
    expect(dlq[0]!.headers).toMatchObject({
      'vigil.dlq.source.topic': fx.topics.eeg,
      'vigil.dlq.error.code': 'EVENT_UNDECODABLE',
      'vigil.dlq.phase': 'decode',
      'vigil.dlq.consumer': 'projection.eeg',
    });
  });

  it('resumes from its own checkpoint: a new consumer group re-reads nothing twice', async () => {
    const again = runner(`${config.topicPrefix}-fresh-group`);
    await again.start();
    await new Promise((r) => setTimeout(r, 4_000));
    await again.stop();
    expect(again.applied).toBe(0);
    expect((await sessionRow())?.frames).toBe(eeg.length);
    expect(await readAll(fx.kafka, fx.topics.dlq)).toHaveLength(1);
  });
});
