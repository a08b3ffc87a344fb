import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { Message } from 'kafkajs';
import { eventually, testConfig } from '../test/support/env';
import { readAll } from '../test/support/stack';
import type { Publisher } from '../producers/publisher';
import { buildFace } from '../test/support/build';
import { pipelineFixture, projectionRunner, type PipelineFixture } from '../test/support/pipeline';
import { sessionEvents } from '../producers/simulator/session';
import type { EegBandPower, FaceFrame, SessionEvent, VehicleFrame } from '../schemas/types';
import type { TopicKey, ValueOf } from '../schemas/catalogue';
import { eegModel } from './eeg/model';
import { faceModel } from './face/model';
import { sessionsModel } from './sessions/model';
import { isoOf, type ProjectedRecord, type ReadModel } from './model';

describe('projection runner (Kafka → PostgreSQL, checkpoint in the same transaction)', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let pool: Pool;
  let publisher: Publisher;
  const startTs = Date.UTC(2026, 0, 1, 8);
  const plan = { seed: 3, index: 0, tenantId: 'tenant-a', startTs, durationMs: 20_000, profile: 'drowsy' as const };
  const events = [...sessionEvents(plan)];
  const sessionId = events[0]!.event.session_id;
  const eeg = events.filter((e) => e.topic === 'eeg').map((e) => e.event as EegBandPower);
  const sessions = events.filter((e) => e.topic === 'sessions').map((e) => e.event as SessionEvent);
  const runner = (groupPrefix: string, model = eegModel) => projectionRunner(fx, model, groupPrefix);

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    ({ pool, publisher } = fx);
  });
  afterAll(() => fx?.close());

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

  it('rebuilds an emptied read model from offset 0, whatever offsets its consumer group committed in Kafka', async () => {
    // Kafka's committed offsets are only hints: the group's say "everything read" ...
    const ends = await fx.admin.fetchTopicOffsets(fx.topics.eeg);
    await fx.admin.setOffsets({
      groupId: `${config.topicPrefix}.projection.eeg`,
      topic: fx.topics.eeg,
      partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })),
    });
    // ... but the database lost the model (its rows and its checkpoint).
    await pool.query('DELETE FROM eeg_frames');
    await pool.query(`DELETE FROM projection_checkpoints WHERE projection = 'eeg'`);
    const rebuilt = runner(config.topicPrefix);
    await rebuilt.start();
    const count = () =>
      pool
        .query<{ n: number; d: number }>(
          'SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM eeg_frames',
        )
        .then((r) => r.rows[0]!);
    const after = await eventually(count, (c) => c.n === eeg.length, 30_000);
    await rebuilt.stop();
    expect(after).toEqual({ n: eeg.length, d: eeg.length });
  });
});

/**
 * Issue 11, items 1, 3 and 4: poison never stops a partition. Records are written straight to Kafka
 * as raw Avro (the serde's encode checks only the Avro schema, not the rule table), as a device or a
 * tenant bypassing the gateway and the producer library would.
 */
describe('projection runner: screening and poison (issue 11)', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let pool: Pool;
  const T0 = Date.UTC(2026, 0, 1, 8);
  const sessionA = `sess-a-${randomUUID()}`;

  const runner = (model: ReadModel) => projectionRunner(fx, model, config.topicPrefix);
  /** Raw Avro straight to the topic, all keyed by session A (one partition, one batch). */
  const sendRaw = async <K extends TopicKey>(key: K, values: ValueOf<K>[]) => {
    const producer = fx.kafka.producer();
    await producer.connect();
    const messages: Message[] = values.map((v) => ({
      key: (v as { session_id: string }).session_id,
      value: fx.serde.encode(key, v),
    }));
    await producer.send({ topic: fx.topics[key], acks: -1, messages });
    await producer.disconnect();
  };
  const checkpointAtEnd = async (projection: string, topic: string) => {
    const ends = await fx.admin.fetchTopicOffsets(topic);
    const { rows } = await pool.query<{ partition: number; next_offset: string }>(
      `SELECT partition, next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2`,
      [projection, topic],
    );
    const at = Object.fromEntries(rows.map((r) => [r.partition, r.next_offset]));
    return ends.every((e) => e.high === '0' || at[e.partition] === e.high);
  };
  const deadLetters = async (consumer: string) =>
    (await readAll(fx.kafka, fx.topics.dlq)).filter((d) => d.headers['vigil.dlq.consumer'] === consumer);

  beforeAll(async () => {
    fx = await pipelineFixture(config, { poolMax: 6 });
    ({ pool } = fx);
  });
  afterAll(() => fx?.close());

  const face = (s: number, over: Partial<FaceFrame> = {}): FaceFrame =>
    buildFace({
      event_id: randomUUID(),
      tenant_id: 'tenant-a',
      session_id: sessionA,
      ts: T0 + s * 1000,
      device_id: 'cam-0001',
      seq: s,
      eye_closure: 0.25,
      ...over,
    });

  it('dead-letters a ts of 8.7e15, U+0000, eye_closure 5.0 and another tenant’s record; projects the good ones around them', async () => {
    const started: SessionEvent = {
      event_id: randomUUID(),
      tenant_id: 'tenant-a',
      session_id: sessionA,
      ts: T0,
      event: { type: 'SessionStarted', driver_id: 'driver-1', vehicle_id: 'vehicle-1', devices: [] },
    };
    const good = [face(1), face(2), face(3, { eye_closure: 1 })];
    const bad = {
      ts: face(4, { ts: 8.7e15 }),
      nul: face(5, { device_id: 'a\u0000b' }),
      range: face(6, { eye_closure: 5.0 }),
      tenant: face(7, { tenant_id: 'tenant-b' }),
    };
    await sendRaw('sessions', [started]);
    await sendRaw('face', [good[0]!, bad.ts, bad.nul, good[1]!, bad.range, bad.tenant, good[2]!]);

    const faces = runner(faceModel);
    const sessions = runner(sessionsModel);
    await Promise.all([faces.start(), sessions.start()]);
    const done = await eventually(
      () => checkpointAtEnd('face', fx.topics.face),
      (v) => v,
      60_000,
    );
    await Promise.all([faces.stop(), sessions.stop()]);
    expect(done).toBe(true);
    expect(faces.applied).toBe(3);

    const rows = await pool.query(
      `SELECT event_id, tenant_id, device_id, eye_closure, ts FROM face_frames WHERE session_id = $1 ORDER BY ts`,
      [sessionA],
    );
    expect(rows.rows).toEqual(
      good.map((g) => ({
        event_id: g.event_id,
        tenant_id: 'tenant-a',
        device_id: 'cam-0001',
        eye_closure: g.eye_closure,
        ts: new Date(g.ts),
      })),
    );
    const session = await pool.query(
      `SELECT tenant_id, face_frame_count::int AS n FROM sessions WHERE session_id = $1`,
      [sessionA],
    );
    expect(session.rows).toEqual([{ tenant_id: 'tenant-a', n: 3 }]);
    const owner = await pool.query(`SELECT tenant_id FROM session_owners WHERE session_id = $1`, [sessionA]);
    expect(owner.rows).toEqual([{ tenant_id: 'tenant-a' }]);

    const dlq = await deadLetters('projection.face');
    const byEvent = new Map(
      dlq.map((d) => [(fx.serde.decodeKnown<FaceFrame>(d.value)?.value ?? ({} as FaceFrame)).event_id, d.headers]),
    );
    expect(dlq).toHaveLength(4);
    for (const [which, reason] of [
      ['ts', 'rule_violation'],
      ['nul', 'rule_violation'],
      ['range', 'rule_violation'],
      ['tenant', 'tenant_mismatch'],
    ] as const) {
      expect(byEvent.get(bad[which].event_id)).toMatchObject({
        'vigil.dlq.reason': reason,
        'vigil.dlq.phase': 'validate',
        'vigil.dlq.source.topic': fx.topics.face,
      });
    }
    expect(byEvent.get(bad.range.event_id)!['vigil.dlq.error.message']).toContain('eye_closure');
    expect(byEvent.get(bad.ts.event_id)!['vigil.dlq.error.message']).toContain('ts');
  });

  /**
   * The data-error path behind the screen: a probe model over the vehicle topic whose statements fail
   * for records that keep every rule (as a model bug or a schema the rules do not yet cover would),
   * with real PostgreSQL errors, a date conversion error, and a transient 40001 twice.
   */
  it('finds records whose statements fail with a data error by splitting the batch, dead-letters them and applies the rest; a transient error is retried, never dead-lettered', async () => {
    await pool.query(`
      CREATE TABLE probe_rows (
        event_id uuid PRIMARY KEY,
        device_id text NOT NULL,
        label text NOT NULL,
        ts timestamptz NOT NULL,
        speed real NOT NULL CHECK (speed < 400)
      );
      CREATE SEQUENCE probe_flaky;
      CREATE FUNCTION probe_flaky() RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        -- nextval is not transactional: the first two calls fail (as a serialization failure), later ones pass.
        IF nextval('probe_flaky') <= 2 THEN
          RAISE EXCEPTION 'probe: serialization failure' USING ERRCODE = '40001';
        END IF;
      END $$;`);
    const probe: ReadModel = {
      name: 'probe',
      topics: ['vehicle'],
      writes: { tables: [{ name: 'probe_rows' }], sessionColumns: [], seed: [] },
      project(records) {
        return (records as ProjectedRecord<VehicleFrame>[]).flatMap(({ value: v }) => {
          const d = v.device_id;
          if (d === 'probe-flaky') return [{ text: 'SELECT probe_flaky()' }];
          return [
            {
              text: `INSERT INTO probe_rows (event_id, device_id, label, ts, speed) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (event_id) DO NOTHING`,
              values: [
                v.event_id,
                d,
                d === 'probe-nul' ? 'a\u0000b' : d, // 22021: PostgreSQL refuses U+0000 in text
                d === 'probe-date' ? isoOf(8.7e15) : d === 'probe-overflow' ? '300000-01-01T00:00:00Z' : isoOf(v.ts), // RangeError; 22008
                d === 'probe-check' ? 450 : v.speed_kmh, // 23514
              ],
            },
          ];
        });
      },
    };
    const vehicle = (s: number, device_id: string): VehicleFrame => ({
      event_id: randomUUID(),
      tenant_id: 'tenant-a',
      session_id: sessionA,
      ts: T0 + s * 1000,
      device_id,
      seq: s,
      speed_kmh: 80 + s,
      lane_offset_m: 0.25,
      steering_deg: 1,
    });
    const frames = [
      vehicle(1, 'probe-ok-1'),
      vehicle(2, 'probe-nul'),
      vehicle(3, 'probe-ok-2'),
      vehicle(4, 'probe-date'),
      vehicle(5, 'probe-ok-3'),
      vehicle(6, 'probe-check'),
      vehicle(7, 'probe-overflow'),
      vehicle(8, 'probe-ok-4'),
      vehicle(9, 'probe-flaky'),
      vehicle(10, 'probe-ok-5'),
    ];
    await sendRaw('vehicle', frames);

    const r = runner(probe);
    await r.start();
    const done = await eventually(
      () => checkpointAtEnd('probe', fx.topics.vehicle),
      (v) => v,
      60_000,
    );
    await r.stop();
    expect(done).toBe(true);

    const rows = await pool.query(`SELECT device_id, speed, ts FROM probe_rows ORDER BY ts`);
    expect(rows.rows).toEqual(
      frames
        .filter((f) => f.device_id.startsWith('probe-ok'))
        .map((f) => ({ device_id: f.device_id, speed: f.speed_kmh, ts: new Date(f.ts) })),
    );
    // The flaky record failed twice with 40001 (retried as a whole) and then passed.
    expect((await pool.query(`SELECT last_value::int AS n FROM probe_flaky`)).rows[0]!.n).toBeGreaterThanOrEqual(3);
    expect(r.applied).toBe(6); // five good rows and the flaky statement

    const dlq = await deadLetters('projection.probe');
    const byDevice = Object.fromEntries(
      dlq.map((d) => [fx.serde.decodeKnown<VehicleFrame>(d.value)!.value.device_id, d.headers]),
    );
    expect(Object.keys(byDevice).sort()).toEqual(['probe-check', 'probe-date', 'probe-nul', 'probe-overflow']);
    expect(dlq).toHaveLength(4); // once each: the transient failures dead-lettered nothing
    for (const h of Object.values(byDevice)) {
      expect(h).toMatchObject({
        'vigil.dlq.reason': 'data_error',
        'vigil.dlq.error.code': 'DATA_ERROR',
        'vigil.dlq.phase': 'project',
        'vigil.dlq.source.topic': fx.topics.vehicle,
      });
    }
    expect(byDevice['probe-nul']!['vigil.dlq.error.message']).toContain('SQLSTATE 22021');
    expect(byDevice['probe-check']!['vigil.dlq.error.message']).toContain('SQLSTATE 23514');
    expect(byDevice['probe-overflow']!['vigil.dlq.error.message']).toContain('SQLSTATE 22008');
    expect(byDevice['probe-date']!['vigil.dlq.error.message']).toBe('Invalid time value');
  });
});
