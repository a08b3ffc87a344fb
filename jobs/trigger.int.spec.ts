import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { eventually, testConfig, testLogger } from '../test/support/env';
import { pipelineFixture, projectionRunner, type PipelineFixture } from '../test/support/pipeline';
import { readAll } from '../test/support/stack';
import { QUEUE } from '../core/jobs';
import type { Publisher } from '../producers/publisher';
import type { AlertEvent, SessionEvent } from '../schemas/types';
import { buildScore } from '../test/support/build';
import type { ProjectionRunner } from '../projections/runner';
import { startJobsWorker, type JobsWorker } from './worker';
import { createRedis, type Redis } from '../core/redis';
import { redisKeys } from '../core/redis-keys';

/**
 * Events → jobs → report, against Kafka, the registry and PostgreSQL: the projections fill the
 * tables, the trigger enqueues `session-report` on SessionEnded (and `alert-webhook` per alert event),
 * the report row appears; the same SessionEnded published twice makes one job.
 */
describe('jobs trigger (Kafka → pg-boss → session_reports)', () => {
  const config = testConfig();
  const log = testLogger();
  let fx: PipelineFixture;
  let pool: Pool;
  let redis: Redis;
  let publisher: Publisher;
  let runners: ProjectionRunner[] = [];
  let worker: JobsWorker | undefined;

  // Recent: the trigger refuses ts outside the window around the append time (as the processor).
  const T0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
  const at = (s: number) => T0 + s * 1000;
  const env = { tenant_id: 'acme', session_id: `s-${randomUUID()}` };
  const score = (s: number, value: number, level: number) => buildScore({ ...env, ts: at(s), score: value, level });
  const alert = (s: number, event: AlertEvent['event']): AlertEvent => ({
    ...env,
    event_id: randomUUID(),
    ts: at(s),
    event,
  });
  const ended: SessionEvent = {
    ...env,
    event_id: randomUUID(),
    ts: at(20),
    event: { type: 'SessionEnded', reason: 'COMPLETED' },
  };

  beforeAll(async () => {
    fx = await pipelineFixture(config, { poolMax: 8 });
    ({ pool, publisher } = fx);
    redis = createRedis(config.redisUrl);
    runners = ['sessions', 'scores', 'alerts'].map((m) => projectionRunner(fx, m, config.topicPrefix));
    await Promise.all(runners.map((r) => r.start()));
    worker = await startJobsWorker(
      {
        config: { ...config, database: { ...config.database, url: fx.databaseUrl } },
        kafka: fx.kafka,
        serde: fx.serde,
        topics: fx.topics,
        pool,
        log,
        redis,
      },
      {
        fromBeginning: true,
        pollingIntervalSeconds: 0.5,
        queueOverrides: { [QUEUE.sessionReport]: { retryLimit: 5, retryDelay: 1, retryBackoff: false } },
      },
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await Promise.all(runners.map((r) => r.stop()));
    await redis?.quit();
    await fx?.close();
  });

  const jobCount = async (queue: string) =>
    (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1`, [queue])).rows[0]!.n;

  it('SessionEnded makes one report job even when published twice; the report row appears', async () => {
    await publisher.publish('sessions', [
      {
        ...env,
        event_id: randomUUID(),
        ts: at(0),
        event: { type: 'SessionStarted', driver_id: 'd1', vehicle_id: 'v1', devices: [] },
      },
    ]);
    await publisher.publish('scores', [score(5, 30, 0), score(10, 55.5, 1), score(15, 60, 1)]);
    await publisher.publish('alerts', [
      alert(10, { type: 'AlertRaised', alert_id: 'al-1', level: 1, reason: 'drowsy', score: 55.5 }),
      alert(20, { type: 'AlertCleared', alert_id: 'al-1', reason: 'session_ended' }),
    ]);
    await publisher.flush();
    // The processor would write the last scores and clears before SessionEnded's offsets move on;
    // wait for their projection so the report's inputs are all there.
    await eventually(
      () =>
        pool.query(`SELECT score_count, alert_count, open_alert_count FROM sessions WHERE session_id = $1`, [
          env.session_id,
        ]),
      (r) => r.rows[0]?.score_count === '3' && r.rows[0]?.alert_count === 1 && r.rows[0]?.open_alert_count === 0,
    );

    await publisher.publish('sessions', [ended]);
    await publisher.publish('sessions', [ended]); // a producer retry: the same event twice in the topic
    await publisher.flush();

    const report = await eventually(
      () => pool.query(`SELECT * FROM session_reports WHERE session_id = $1`, [env.session_id]),
      (r) => r.rowCount === 1,
      40_000,
    );
    const { generated_at, report: doc, ...row } = report.rows[0];
    expect(generated_at).toBeInstanceOf(Date);
    // The tenant's cached report answers were invalidated once the report was written.
    expect(Number(await redis.get(redisKeys(config.topicPrefix).cacheGeneration('acme')))).toBeGreaterThanOrEqual(1);
    expect(row).toEqual({
      session_id: env.session_id,
      tenant_id: 'acme',
      driver_id: 'd1',
      vehicle_id: 'v1',
      started_at: new Date(at(0)),
      ended_at: new Date(at(20)),
      duration_s: 20,
      model_version: 'fatigue-v1',
      score_avg: 48.5,
      score_max: 60,
      level_max: 1,
      level1_s: 10,
      level2_s: 0,
      alert_count: 1,
      microsleep_count: 0,
    });
    expect(doc).toMatchObject({
      complete: true,
      scores: { count: 3, mean: 48.5, max: 60, level_max: 1, seconds_at_level: { '0': 5, '1': 10, '2': 0 } },
      alerts: { count: 1, by_reason: { drowsy: 1, severe: 0, microsleep: 0, face_lost: 0 } },
      data_quality: {
        eeg: { received: 0, expected: 200, ratio: 0, devices: 0, largest_gap_s: 20 },
        face: { received: 0, expected: 300, ratio: 0, devices: 0, largest_gap_s: 20 },
        vehicle: { received: 0, expected: 200, ratio: 0, devices: 0, largest_gap_s: 20 },
        game_events: 0,
      },
    });

    // Both copies of SessionEnded and both alert events were consumed and asked for their jobs...
    await eventually(
      async () => worker!.trigger!.requested,
      (n) => n >= 4,
    );
    // ...and pg-boss holds one job per event.
    expect(await jobCount(QUEUE.sessionReport)).toBe(1);
    expect(await jobCount(QUEUE.alertWebhook)).toBe(2);
  });

  it('screening decides whether a job is made: another tenant’s SessionEnded and a rule breaker make none and are dead-lettered', async () => {
    const owned = `s-${randomUUID()}`;
    const other = `s-${randomUUID()}`;
    const start = (session_id: string): SessionEvent => ({
      tenant_id: 'acme',
      session_id,
      event_id: randomUUID(),
      ts: at(0),
      event: { type: 'SessionStarted', driver_id: 'd1', vehicle_id: 'v1', devices: [] },
    });
    const end = (session_id: string, over: Partial<SessionEvent> = {}): SessionEvent => ({
      tenant_id: 'acme',
      session_id,
      event_id: randomUUID(),
      ts: at(30),
      event: { type: 'SessionEnded', reason: 'COMPLETED' },
      ...over,
    });
    const intruder = end(owned, { tenant_id: 'intruder' }); // tenant B ending tenant A's session
    const broken = end(other, { ts: 8.7e15 }); // passes Avro's long, breaks the rule table
    const real = end(owned);
    // Raw Avro straight to the topic (as a tenant bypassing the gateway would), one key per session.
    const producer = fx.kafka.producer();
    await producer.connect();
    const send = (events: SessionEvent[]) =>
      producer.send({
        topic: fx.topics.sessions,
        acks: -1,
        messages: events.map((e) => ({ key: e.session_id, value: fx.serde.encode('sessions', e) })),
      });
    await send([start(owned), start(other)]);
    await send([intruder, broken, real]);
    await producer.disconnect();

    const deadLetters = await eventually(
      async () =>
        (await readAll(fx.kafka, fx.topics.dlq)).filter((d) => d.headers['vigil.dlq.consumer'] === 'jobs.trigger'),
      (d) => d.length >= 2,
      40_000,
    );
    const reasons = Object.fromEntries(
      deadLetters.map((d) => [
        fx.serde.decodeKnown<SessionEvent>(d.value)!.value.event_id,
        d.headers['vigil.dlq.reason'],
      ]),
    );
    expect(reasons).toEqual({ [intruder.event_id]: 'tenant_mismatch', [broken.event_id]: 'rule_violation' });

    const reportJobs = (session: string) =>
      pool.query<{ tenant_id: string }>(
        `SELECT data->>'tenant_id' AS tenant_id FROM pgboss.job WHERE name = $1 AND data->>'session_id' = $2`,
        [QUEUE.sessionReport, session],
      );
    // The real end of the owned session makes its one job (of its owner); the intruder's and the broken one none.
    const owner = await eventually(
      () => reportJobs(owned),
      (r) => r.rowCount === 1,
      30_000,
    );
    expect(owner.rows).toEqual([{ tenant_id: 'acme' }]);
    expect((await reportJobs(other)).rowCount).toBe(0);
  });
});
