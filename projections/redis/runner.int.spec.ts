import { once } from 'node:events';
import { createRedis, type Redis } from '../../core/redis';
import { eventually, testConfig, testLogger, uniqueName } from '../../test/support/env';
import { readAll } from '../../test/support/stack';
import { pipelineFixture, type PipelineFixture } from '../../test/support/pipeline';
import { setUp } from '../../test/support/fixture';
import type { Config } from '../../core/config';
import type { Publisher } from '../../producers/publisher';
import { uuidFrom } from '../../processors/fatigue/ids';
import type { AlertEvent, AlertEventKind, FatigueScored, SessionEvent } from '../../schemas/types';
import { buildScore } from '../../test/support/build';
import { RedisProjectionRunner } from './runner';
import { projectRedis, type RedisModelOptions } from './model';
import { redisKeys } from '../../core/redis-keys';
import { redisScripts } from './scripts';

const T0 = Date.UTC(2026, 0, 1, 8);
const at = (s: number) => T0 + s * 1000;
const TENANT = 'tenant-a';

const startedOf = (session: string, s: number): SessionEvent => ({
  event_id: uuidFrom('spec', 'start', session),
  tenant_id: TENANT,
  session_id: session,
  ts: at(s),
  event: { type: 'SessionStarted', driver_id: 'driver-1', vehicle_id: 'vehicle-1', devices: [] },
});
const endedOf = (session: string, s: number): SessionEvent => ({
  event_id: uuidFrom('spec', 'end', session),
  tenant_id: TENANT,
  session_id: session,
  ts: at(s),
  event: { type: 'SessionEnded', reason: 'COMPLETED' },
});
const components = { ocular: 0.5, driving: null, eeg: null, reaction: 0.25, yawn: 0 };
const scoreOf = (session: string, endS: number, score: number, level: number) =>
  buildScore({ tenant_id: TENANT, session_id: session, ts: at(endS), score, level, components });
const alertOf = (session: string, s: number, event: AlertEventKind): AlertEvent => ({
  event_id: uuidFrom('spec', 'alert', event.alert_id, event.type, s),
  tenant_id: TENANT,
  session_id: session,
  ts: at(s),
  event,
});

/** Commands fail fast while disconnected (no offline queue): wait for the connection first. */
async function ready(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await once(redis, 'ready');
}

/** Every key under the prefix with its content (TTLs left out); stream entries with their ids. */
async function dump(redis: Redis, prefix: string): Promise<Record<string, unknown>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const out: Record<string, unknown> = {};
  for (const k of keys.sort()) {
    const type = await redis.type(k);
    if (type === 'hash') out[k] = await redis.hgetall(k);
    else if (type === 'zset') out[k] = await redis.zrange(k, 0, -1, 'WITHSCORES');
    else if (type === 'stream') out[k] = await redis.xrange(k, '-', '+');
    else out[k] = type;
  }
  return out;
}

async function dropKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = Object.keys(await dump(redis, prefix));
  if (keys.length) await redis.del(...keys);
}

/**
 * The pipeline fixture (pool of 4) and a connected Redis client, keys under the config's topic prefix;
 * `close()` also drops those keys, then quits Redis.
 */
interface RedisPipeline extends PipelineFixture {
  redis: Redis;
  keyPrefix: string;
}

function redisPipeline(config: Config): Promise<RedisPipeline> {
  return setUp(async (onClose) => {
    const fx = await pipelineFixture(config, { poolMax: 4 });
    onClose(() => fx.close());
    const redis = createRedis(config.redisUrl);
    onClose(() => redis.quit());
    await ready(redis);
    onClose(() => dropKeys(redis, config.topicPrefix));
    return { ...fx, redis, keyPrefix: config.topicPrefix };
  });
}

/** A Redis projection runner on the fixture, consumer group `<groupPrefix>.projection.redis`. Not started. */
const redisRunner = ({ kafka, redis, pool, serde, topics, keyPrefix }: RedisPipeline, groupPrefix: string) =>
  new RedisProjectionRunner({ kafka, redis, pool, serde, topics, log: testLogger(), groupPrefix, keyPrefix });

const feedOf = async (redis: Redis, key: string) =>
  (await redis.xrange(key, '-', '+')).map(([, f]) => {
    const m: Record<string, string> = {};
    for (let i = 0; i < f.length; i += 2) m[f[i]!] = f[i + 1]!;
    return { kind: m.kind, ts: Number(m.ts), event_id: m.event_id, data: JSON.parse(m.data!) as unknown };
  });

describe('redis read model scripts (against Redis)', () => {
  const prefix = uniqueName('vigil-test-');
  const options: RedisModelOptions = {
    prefix,
    sessionTtlMs: 60_000,
    alertTtlMs: 60_000,
    liveStaleMs: 3_600_000,
    feedMaxLen: 1_000,
  };
  let redis: Redis;
  const apply = async (topic: 'sessions' | 'scores' | 'alerts', ...values: unknown[]) => {
    const ops = projectRedis(
      values.map((value, i) => ({ topic, partition: 0, offset: String(i), value })),
      options,
    );
    const results: unknown[] = [];
    for (const op of ops) {
      const s = redisScripts[op.script];
      results.push(await redis.eval(s.lua, s.numberOfKeys, ...op.keys, ...op.args));
    }
    return results;
  };
  const k = (rest: string) => `${prefix}:${rest}`;

  beforeAll(async () => {
    redis = createRedis(testConfig().redisUrl);
    await ready(redis);
  });
  afterAll(async () => {
    await dropKeys(redis, prefix);
    await redis.quit();
  });

  it('keeps the newest score as the latest: an older or replayed score changes nothing', async () => {
    await apply('scores', scoreOf('s1', 20, 60.5, 2));
    expect(await apply('scores', scoreOf('s1', 15, 80, 2), scoreOf('s1', 20, 60.5, 2))).toEqual([0, 1, 0, 0, 1, 0]);
    expect(await redis.hgetall(k(`tenant:${TENANT}:session:s1:latest`))).toEqual({
      ts: String(at(20)),
      session_id: 's1',
      tenant_id: TENANT,
      score: '60.5',
      level: '2',
      window_start_ts: String(at(-40)),
      components: JSON.stringify(components),
      model_version: 'fatigue-v1',
      event_id: scoreOf('s1', 20, 60.5, 2).event_id,
    });
    expect(await redis.pttl(k(`tenant:${TENANT}:session:s1:latest`))).toBeGreaterThan(50_000);
    await apply('scores', scoreOf('s1', 25, 55, 1));
    expect(await redis.hmget(k(`tenant:${TENANT}:session:s1:latest`), 'ts', 'score', 'level')).toEqual([
      String(at(25)),
      '55',
      '1',
    ]);
  });

  it('keeps live sessions by newest event time, never lowered, and leaves ended sessions out for good', async () => {
    await apply('sessions', startedOf('s2', 0));
    expect(await redis.zrange(k(`tenant:${TENANT}:live`), 0, -1, 'WITHSCORES')).toEqual([
      's2',
      String(at(0)),
      's1',
      String(at(25)),
    ]);
    await apply('scores', scoreOf('s1', 10, 30, 0)); // older: ZADD GT keeps at(25)
    expect(await redis.zscore(k(`tenant:${TENANT}:live`), 's1')).toBe(String(at(25)));
    await apply('sessions', endedOf('s2', 30));
    await apply('sessions', startedOf('s2', 0)); // a replay of the start after the end
    await apply('scores', scoreOf('s2', 30, 10, 0)); // a score flushed at the end
    expect(await redis.zrange(k(`tenant:${TENANT}:live`), 0, -1)).toEqual(['s1']);
    expect(await redis.hmget(k(`tenant:${TENANT}:session:s2:latest`), 'ended_at', 'end_reason', 'score')).toEqual([
      String(at(30)),
      'COMPLETED',
      '10',
    ]);
  });

  it('folds an alert’s life cycle: active, escalated, acknowledged, then gone from the active set', async () => {
    const id = 'alert-1';
    const raised = alertOf('s1', 12, {
      type: 'AlertRaised',
      alert_id: id,
      level: 2,
      reason: 'microsleep',
      score: null,
    });
    const escalated = alertOf('s1', 42, { type: 'AlertEscalated', alert_id: id, level: 2, count: 1 });
    const acked = alertOf('s1', 44, { type: 'AlertAcknowledged', alert_id: id, acknowledged_by: 'ops@fleet' });
    const cleared = alertOf('s1', 72, { type: 'AlertCleared', alert_id: id, reason: 'recovered' });
    const active = k(`tenant:${TENANT}:alerts:active`);

    await apply('alerts', raised, escalated);
    await apply('alerts', raised); // replayed: nothing moves back
    expect(JSON.parse((await redis.hget(active, id))!)).toEqual({
      alert_id: id,
      session_id: 's1',
      tenant_id: TENANT,
      level: 2,
      reason: 'microsleep',
      score: null,
      status: 'active',
      raised_at: at(12),
      escalations: 1,
      acknowledged_at: null,
      acknowledged_by: null,
      last_event_ts: at(42),
    });
    await apply('alerts', acked);
    expect(JSON.parse((await redis.hget(active, id))!)).toMatchObject({
      status: 'acknowledged',
      acknowledged_at: at(44),
      acknowledged_by: 'ops@fleet',
    });
    await apply('alerts', cleared);
    await apply('alerts', raised, escalated, acked); // a replay from before the clear
    expect(await redis.hexists(active, id)).toBe(0);
    expect(await redis.hgetall(k(`tenant:${TENANT}:alert:${id}`))).toEqual({
      alert_id: id,
      session_id: 's1',
      tenant_id: TENANT,
      level: '2',
      reason: 'microsleep',
      status: 'cleared',
      raised_at: String(at(12)),
      escalations: '1',
      acknowledged_at: String(at(44)),
      acknowledged_by: 'ops@fleet',
      cleared_at: String(at(72)),
      clear_reason: 'recovered',
      last_event_ts: String(at(72)),
    });
  });

  it('feeds each event once per kind in event-time order: replays and late events add nothing', async () => {
    const feed = k(`tenant:${TENANT}:session:s3:feed`);
    const a = alertOf('s3', 20, { type: 'AlertRaised', alert_id: 'x', level: 1, reason: 'drowsy', score: 50 });
    const b = alertOf('s3', 20, { type: 'AlertRaised', alert_id: 'y', level: 2, reason: 'severe', score: 50 });
    await apply('scores', scoreOf('s3', 20, 50, 1));
    await apply('alerts', a, b); // two alert events at the same ts: both
    await apply('scores', scoreOf('s3', 15, 40, 0)); // late score: not news
    await apply('alerts', a); // replay
    await apply('scores', scoreOf('s3', 25, 52, 1));
    expect((await feedOf(redis, feed)).map((e) => [e.kind, e.ts, e.event_id])).toEqual([
      ['score', at(20), scoreOf('s3', 20, 50, 1).event_id],
      ['alert', at(20), a.event_id],
      ['alert', at(20), b.event_id],
      ['score', at(25), scoreOf('s3', 25, 52, 1).event_id],
    ]);
    expect((await feedOf(redis, feed))[1]!.data).toEqual(a);
  });

  it('caps the feed (and the tenant feed) near its maximum length', async () => {
    const capped = { ...options, feedMaxLen: 10 };
    for (let i = 0; i < 300; i++) {
      const [op] = projectRedis(
        [{ topic: 'sessions', partition: 0, offset: '0', value: { ...startedOf('s4', i), event_id: `e${i}` } }],
        capped,
      ).filter((o) => o.script === 'feed');
      await redis.eval(redisScripts.feed.lua, redisScripts.feed.numberOfKeys, ...op!.keys, ...op!.args);
    }
    const n = await redis.xlen(k(`tenant:${TENANT}:session:s4:feed`));
    expect(n).toBeGreaterThanOrEqual(10);
    expect(n).toBeLessThan(300);
    // The tenant feed got every entry too, capped near 20 times a session feed's length (200 here).
    const t = await redis.xlen(k(`tenant:${TENANT}:feed`));
    expect(t).toBeGreaterThanOrEqual(200);
    expect(t).toBeLessThan(300);
  });
});

describe('redis projection runner (Kafka → Redis, checkpoint in Redis)', () => {
  const config = testConfig();
  const prefix = config.topicPrefix;
  let fx: RedisPipeline;
  let redis: Redis;
  let publisher: Publisher;
  const runner = (groupPrefix: string) => redisRunner(fx, groupPrefix);

  const SA = 'session-a-0001';
  const SB = 'session-b-0001';
  const microsleep = 'alert-microsleep';
  const drowsy = 'alert-drowsy';
  const sessions = [startedOf(SA, 0), startedOf(SB, 0), endedOf(SB, 30)];
  const scores = [
    scoreOf(SA, 10, 42.5, 0),
    scoreOf(SA, 15, 71.25, 2),
    scoreOf(SA, 20, 60.5, 2),
    scoreOf(SB, 10, 20, 0),
    scoreOf(SA, 5, 80, 2), // late
  ];
  const alerts = [
    alertOf(SA, 12, { type: 'AlertRaised', alert_id: microsleep, level: 2, reason: 'microsleep', score: null }),
    alertOf(SA, 15, { type: 'AlertRaised', alert_id: drowsy, level: 1, reason: 'drowsy', score: 71.25 }),
    alertOf(SA, 42, { type: 'AlertEscalated', alert_id: microsleep, level: 2, count: 1 }),
    alertOf(SA, 44, { type: 'AlertAcknowledged', alert_id: microsleep, acknowledged_by: 'ops@fleet' }),
    alertOf(SA, 72, { type: 'AlertCleared', alert_id: microsleep, reason: 'recovered' }),
  ];
  const total = sessions.length + scores.length + alerts.length;

  /** Runs a runner until `until` holds of the key dump, and `dwellMs` more. */
  async function runUntil(r: RedisProjectionRunner, until: () => Promise<boolean>, dwellMs = 0) {
    await r.start();
    const ok = await eventually(until, (v) => v, 60_000);
    await new Promise((res) => setTimeout(res, dwellMs));
    await r.stop();
    expect(ok).toBe(true);
  }
  const checkpointsAtEnd = async () => {
    const cps = await redis.hgetall(`${prefix}:projection:redis:checkpoints`);
    for (const t of [fx.topics.sessions, fx.topics.scores, fx.topics.alerts]) {
      for (const o of await fx.admin.fetchTopicOffsets(t)) {
        if (o.high !== '0' && cps[`${t}:${o.partition}`] !== o.high) return false;
      }
    }
    return true;
  };

  beforeAll(async () => {
    fx = await redisPipeline(config);
    ({ publisher, redis } = fx);
  });
  afterAll(() => fx?.close());

  it('projects sessions, scores and alerts into the latest score, live sessions, active alerts and feeds', async () => {
    await publisher.publish('sessions', sessions);
    await publisher.publish('scores', scores.slice(0, 2));
    const producer = fx.kafka.producer();
    await producer.connect();
    await producer.send({ topic: fx.topics.scores, messages: [{ key: SA, value: Buffer.from('not avro') }] });
    await producer.disconnect();
    await publisher.publish('scores', scores.slice(2));
    await publisher.publish('alerts', alerts);

    const r = runner(prefix);
    await runUntil(r, checkpointsAtEnd);
    expect(r.applied).toBe(total);

    expect(await redis.hmget(`${prefix}:tenant:${TENANT}:session:${SA}:latest`, 'ts', 'score', 'level')).toEqual([
      String(at(20)),
      '60.5',
      '2',
    ]);
    expect(await redis.zrange(`${prefix}:tenant:${TENANT}:live`, 0, -1, 'WITHSCORES')).toEqual([SA, String(at(20))]);
    const active = await redis.hgetall(`${prefix}:tenant:${TENANT}:alerts:active`);
    expect(Object.keys(active)).toEqual([drowsy]);
    expect(JSON.parse(active[drowsy]!)).toMatchObject({ status: 'active', level: 1, score: 71.25, raised_at: at(15) });
    expect(await redis.hget(`${prefix}:tenant:${TENANT}:alert:${microsleep}`, 'status')).toBe('cleared');

    const feed = await feedOf(redis, `${prefix}:tenant:${TENANT}:session:${SA}:feed`);
    const byKind = (kind: string) => feed.filter((e) => e.kind === kind).map((e) => e.ts);
    expect(byKind('session')).toEqual([at(0)]);
    expect(byKind('score')).toEqual([at(10), at(15), at(20)]); // the late one is not news
    expect(byKind('alert')).toEqual([at(12), at(15), at(42), at(44), at(72)]);

    const dlq = await readAll(fx.kafka, fx.topics.dlq);
    expect(dlq.map((d) => d.headers['vigil.dlq.consumer'])).toEqual(['projection.redis']);
  });

  it('resumes from its checkpoint in Redis: a runner under a new consumer group applies nothing', async () => {
    const before = await dump(redis, prefix);
    const again = runner(`${prefix}-again`);
    await runUntil(again, checkpointsAtEnd, 4_000);
    expect(again.applied).toBe(0);
    expect(await dump(redis, prefix)).toEqual(before);
  });

  it('changes nothing when replayed without its checkpoint (the guards)', async () => {
    await redis.del(`${prefix}:projection:redis:checkpoints`);
    const before = await dump(redis, prefix);
    delete before[`${prefix}:projection:redis:checkpoints`];
    const replay = runner(`${prefix}-replay`);
    await runUntil(replay, checkpointsAtEnd);
    expect(replay.applied).toBe(total);
    const after = await dump(redis, prefix);
    delete after[`${prefix}:projection:redis:checkpoints`];
    expect(after).toEqual(before);
  });
});

/** Issue 11: screening before apply and poison that never stops a partition, for the Redis model. */
describe('redis projection runner: screening and poison (issue 11)', () => {
  const config = testConfig();
  const prefix = config.topicPrefix;
  const keys = redisKeys(prefix);
  let fx: RedisPipeline;
  let redis: Redis;

  beforeAll(async () => {
    fx = await redisPipeline(config);
    ({ redis } = fx);
  });
  afterAll(() => fx?.close());

  it('dead-letters a rule breaker, another tenant’s record and a record whose script fails on its data; projects the rest and moves the checkpoint to the end', async () => {
    const SA = 'session-a-poison';
    const SC = 'session-c-poison';
    const good = [scoreOf(SA, 10, 40, 0), scoreOf(SA, 20, 50, 1)];
    const ruleBreaker = scoreOf(SA, 15, 150, 1); // score in [0, 100]
    const intruder = { ...scoreOf(SA, 18, 99, 2), tenant_id: 'tenant-b' }; // tenant B naming A's session
    const wrongType = scoreOf(SC, 12, 30, 0); // its latest key holds a string: WRONGTYPE in its script
    await redis.set(keys.latest(TENANT, SC), 'not a hash');
    // Raw Avro, one key (one partition, one batch): the serde's encode checks the Avro schema only.
    const producer = fx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: fx.topics.scores,
      acks: -1,
      messages: [good[0]!, ruleBreaker, wrongType, intruder, good[1]!].map((v) => ({
        key: SA,
        value: fx.serde.encode('scores', v),
      })),
    });
    await producer.disconnect();

    const r = redisRunner(fx, prefix);
    await r.start();
    const atEnd = async () => {
      const cps = await redis.hgetall(keys.checkpoints('redis'));
      const ends = await fx.admin.fetchTopicOffsets(fx.topics.scores);
      return ends.every((o) => o.high === '0' || cps[`${fx.topics.scores}:${o.partition}`] === o.high);
    };
    const done = await eventually(atEnd, (v) => v, 60_000);
    await r.stop();
    expect(done).toBe(true);
    expect(r.applied).toBe(2);

    expect(await redis.hmget(keys.latest(TENANT, SA), 'ts', 'score', 'level', 'tenant_id')).toEqual([
      String(at(20)),
      '50',
      '1',
      TENANT,
    ]);
    expect((await feedOf(redis, keys.feed(TENANT, SA))).map((e) => e.event_id)).toEqual(good.map((g) => g.event_id));
    expect(await redis.zrange(keys.live(TENANT), 0, -1)).toEqual([SA]);
    expect(await redis.get(keys.latest(TENANT, SC))).toBe('not a hash');
    // Nothing of tenant B anywhere: no key names it.
    expect(Object.keys(await dump(redis, prefix)).filter((k) => k.includes('tenant-b'))).toEqual([]);

    const dlq = (await readAll(fx.kafka, fx.topics.dlq)).filter(
      (d) => d.headers['vigil.dlq.consumer'] === 'projection.redis',
    );
    const byEvent = Object.fromEntries(
      dlq.map((d) => [fx.serde.decodeKnown<FatigueScored>(d.value)!.value.event_id, d.headers]),
    );
    expect(dlq).toHaveLength(3);
    expect(byEvent[ruleBreaker.event_id]).toMatchObject({
      'vigil.dlq.reason': 'rule_violation',
      'vigil.dlq.phase': 'validate',
    });
    expect(byEvent[intruder.event_id]).toMatchObject({
      'vigil.dlq.reason': 'tenant_mismatch',
      'vigil.dlq.phase': 'validate',
    });
    expect(byEvent[wrongType.event_id]).toMatchObject({
      'vigil.dlq.reason': 'data_error',
      'vigil.dlq.phase': 'project',
    });
    expect(byEvent[wrongType.event_id]!['vigil.dlq.error.message']).toContain('WRONGTYPE');
  });
});
