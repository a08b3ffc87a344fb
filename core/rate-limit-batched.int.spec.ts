import { createRedis, type Redis } from './redis';
import { RedisRateLimiter } from './rate-limit';
import { BatchedRateLimiter } from './rate-limit-batched';
import { eventually, testConfig, testLogger, uniqueName } from '../test/support/env';

/** The batched limiter against the real Redis: exact alone, bounded across instances, few round trips. */
describe('BatchedRateLimiter (real Redis)', () => {
  const config = testConfig();
  let redis: Redis;
  const limiters: BatchedRateLimiter[] = [];

  beforeAll(async () => {
    redis = createRedis(config.redisUrl);
    await new Promise((ready) => redis.once('ready', ready));
  });
  afterAll(() => {
    for (const l of limiters) l.stop();
    redis.disconnect();
  });

  const limiter = (keyPrefix: string, points: number, syncMs = 100) => {
    const shared = new RedisRateLimiter(redis, { points, windowS: 60, keyPrefix, log: testLogger() });
    const l = new BatchedRateLimiter(shared, { syncMs });
    limiters.push(l);
    return l;
  };
  const sharedCount = async (keyPrefix: string, caller: string) =>
    Number((await redis.get(`${keyPrefix}:${caller}`)) ?? 0);

  it('keeps the limit exactly in one instance: the takes beyond it are refused with Retry-After data', async () => {
    const prefix = uniqueName('rate-one');
    const l = limiter(prefix, 50);
    const decisions = [];
    for (let i = 0; i < 60; i++) decisions.push(await l.take('caller', 1));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
    expect(decisions.slice(0, 50).every((d) => d.allowed)).toBe(true);
    expect(decisions[49]).toMatchObject({ allowed: true, limit: 50, windowS: 60, remaining: 0 });
    const refused = decisions[50]!;
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused.resetMs).toBeGreaterThan(50_000);
    // Every take is in Redis once the near-limit ones asked it (refused ones count, as before).
    expect(
      await eventually(
        () => sharedCount(prefix, 'caller'),
        (n) => n === 60,
        2_000,
      ),
    ).toBe(60);
  });

  it('decides far from the limit in process and adds the count to Redis within the sync interval', async () => {
    const prefix = uniqueName('rate-far');
    const l = limiter(prefix, 10_000, 1_000);
    for (let i = 0; i < 200; i++) expect((await l.take('caller', 1)).allowed).toBe(true);
    // The first take asked Redis; most of the others were counted here and sent in one call per sync.
    expect(await sharedCount(prefix, 'caller')).toBeLessThan(200);
    expect(
      await eventually(
        () => sharedCount(prefix, 'caller'),
        (n) => n === 200,
        5_000,
      ),
    ).toBe(200);
    const next = await l.take('caller', 1);
    expect(next).toMatchObject({ allowed: true, limit: 10_000, remaining: 10_000 - 201 });
  });

  it('lets two instances sharing Redis through at most one reserve over the limit', async () => {
    const prefix = uniqueName('rate-two');
    const [a, b] = [limiter(prefix, 100), limiter(prefix, 100)];
    let allowed = 0;
    for (let i = 0; i < 300; i++) if ((await (i % 2 ? a : b).take('caller', 1)).allowed) allowed += 1;
    expect(allowed).toBeGreaterThanOrEqual(100);
    expect(allowed).toBeLessThanOrEqual(100 + a.reserve);
    // Later takes are refused by both, whatever each counted in process.
    expect([(await a.take('caller', 1)).allowed, (await b.take('caller', 1)).allowed]).toEqual([false, false]);
  });

  it('fails open when Redis does not answer, without RateLimit data', async () => {
    const dead = createRedis('redis://127.0.0.1:1/0');
    dead.on('error', () => {});
    try {
      const l = new BatchedRateLimiter(
        new RedisRateLimiter(dead, { points: 1, windowS: 60, keyPrefix: uniqueName('rate-dead'), log: testLogger() }),
      );
      limiters.push(l);
      const decisions = [await l.take('caller', 1), await l.take('caller', 1)];
      expect(decisions).toEqual([
        { allowed: true, limit: 1, windowS: 60 },
        { allowed: true, limit: 1, windowS: 60 },
      ]);
    } finally {
      dead.disconnect();
    }
  });
});
