import type { Pool } from 'pg';
import { testConfig, testLogger } from '../../test/support/env';
import { migratedDatabase, type MigratedDatabase } from '../../test/support/database';
import { kafkaFixture, type KafkaFixture } from '../../test/support/stack';
import { createRedis, type Redis } from '../../core/redis';
import { VigilError } from '../../core/errors';
import { keyOf } from '../../core/kafka';
import { sessionEvents } from '../../producers/simulator/session';
import type { EegBandPower } from '../../schemas/types';
import { projectionLag } from '../../api/health-report';
import { rebuildProjection } from './rebuild';

/**
 * A rebuild over a topic whose history Kafka no longer holds (records deleted with deleteRecords, as
 * retention would), against real Kafka and PostgreSQL: refused with HISTORY_TRUNCATED naming the
 * partition and what would be lost, before anything is touched; done with `allowTruncated`. And the
 * readiness lag leaves a rebuild's own checkpoints out.
 */
describe('rebuild refuses over missing history', () => {
  const config = testConfig({ VIGIL_TOPIC_PARTITIONS: '2' });
  const log = testLogger();
  let fx: KafkaFixture;
  let db: MigratedDatabase;
  let pool: Pool;
  let redis: Redis;
  let deps: Parameters<typeof rebuildProjection>[0];
  let topic: string;
  /** Records per partition as produced. */
  const produced: Record<number, number> = { 0: 8, 1: 4 };

  beforeAll(async () => {
    db = await migratedDatabase();
    pool = db.pool;
    redis = createRedis(config.redisUrl);
    redis.on('error', () => {});
    fx = await kafkaFixture(config);
    topic = fx.topics.eeg;
    deps = { kafka: fx.kafka, pool, serde: fx.serde, topics: fx.topics, log };
    const eeg = [
      ...sessionEvents({
        seed: 5,
        index: 0,
        tenantId: 'tenant-t',
        startTs: Date.now() - 60_000,
        durationMs: 5_000,
        profile: 'alert',
        modalities: ['eeg'],
      }),
    ]
      .filter((e) => e.topic === 'eeg')
      .map((e) => e.event as EegBandPower);
    const producer = fx.kafka.producer();
    await producer.connect();
    let i = 0;
    for (const [partition, n] of Object.entries(produced)) {
      await producer.send({
        topic,
        acks: -1,
        messages: eeg.slice(i, i + n).map((ev) => ({
          partition: Number(partition),
          key: keyOf(ev),
          value: fx.serde.encode('eeg', ev),
        })),
      });
      i += n;
    }
    await producer.disconnect();
    // Retention, by hand: partition 0 loses its first 3 records.
    await fx.admin.fetchTopicOffsets(topic); // loads the partition leaders deleteTopicRecords asks
    await fx.admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
    // The live eeg projection stands at the end of both partitions.
    for (const [partition, n] of Object.entries(produced)) {
      await pool.query(
        `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ('eeg', $1, $2, $3)`,
        [topic, Number(partition), n],
      );
    }
  });
  afterAll(async () => {
    await redis?.quit().catch(() => {});
    await fx?.close();
    await db?.close();
  });

  const frames = async () => (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM eeg_frames')).rows[0]!.n;

  it('refuses with HISTORY_TRUNCATED naming the topic, partition and the records lost, touching nothing', async () => {
    const err = (await rebuildProjection(deps, 'eeg').catch((e: unknown) => e)) as VigilError;
    expect(err).toBeInstanceOf(VigilError);
    expect(err.code).toBe('HISTORY_TRUNCATED');
    expect(err.details).toEqual({
      model: 'eeg',
      lost: '3',
      truncated: [{ topic, partition: 0, logStartOffset: '3', lost: '3' }],
    });
    expect(err.message).toContain(`${topic} partitions 0 (offsets 0-2 deleted)`);
    expect(err.message).toContain('Up to 3 records would be lost');
    expect(err.message).toContain('--allow-truncated');
    const schemas = await pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'vigil_rebuild_%'`);
    expect(schemas.rowCount).toBe(0);
    const rebuildRows = await pool.query(`SELECT 1 FROM projection_checkpoints WHERE projection LIKE '%@rebuild_%'`);
    expect(rebuildRows.rowCount).toBe(0);
  });

  it('refuses with --from older than the first record Kafka still holds, not with --from after it', async () => {
    const old = (await rebuildProjection(deps, 'eeg', { from: Date.now() - 3_600_000 }).catch(
      (e: unknown) => e,
    )) as VigilError;
    expect(old.code).toBe('HISTORY_TRUNCATED');
    expect(old.details.truncated).toEqual([{ topic, partition: 0, logStartOffset: '3', lost: '3' }]);
    // Every record Kafka holds is older than this --from: what was deleted is older still.
    const recent = await rebuildProjection(deps, 'eeg', { from: Date.now() + 3_600_000 });
    expect(recent.truncated).toEqual([]);
  });

  it('rebuilds what Kafka still holds with allowTruncated, and says what was missing', async () => {
    const r = await rebuildProjection(deps, 'eeg', { allowTruncated: true });
    expect(r.truncated).toEqual([{ topic, partition: 0, logStartOffset: '3', lost: '3' }]);
    expect(r.applied).toBe(produced[0]! - 3 + produced[1]!);
    expect(await frames()).toBe(produced[0]! - 3 + produced[1]!);
  });

  it("leaves a rebuild's own checkpoints out of the readiness lag", async () => {
    await pool.query(
      `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ('eeg@rebuild_abc123', $1, 0, 0)`,
      [topic],
    );
    const lag = await projectionLag(pool, fx.admin, redis, config.topicPrefix);
    expect(lag.byProjection).toEqual({ eeg: 0 });
    expect(lag.total).toBe(0);
  });
});
