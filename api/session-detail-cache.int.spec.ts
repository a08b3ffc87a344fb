import { redisKeys } from '../core/redis-keys';
import { apiFixture, type ApiFixture } from '../test/support/api';

/**
 * `GET /v1/sessions/:id` reuses a session's PostgreSQL row for VIGIL_API_DETAIL_CACHE_MS in one
 * process (real PostgreSQL and Redis): stale by at most that long, per tenant, one load for a burst
 * of misses. The latest score comes from Redis on every request, never from the cache.
 */
describe('session detail cache (real PostgreSQL, Redis)', () => {
  let fx: ApiFixture;
  let keyA: string;
  let keyB: string;
  const TTL_MS = 1_500;

  beforeAll(async () => {
    fx = await apiFixture({ VIGIL_API_DETAIL_CACHE_MS: String(TTL_MS) });
    [keyA, keyB] = await Promise.all([fx.key('fleet-a', 'reader'), fx.key('fleet-b', 'reader')]);
    await fx.pool.query(
      `INSERT INTO sessions (session_id, tenant_id, status, alert_count) VALUES
         ('s-cache', 'fleet-a', 'active', 0), ('s-burst', 'fleet-a', 'active', 0), ('s-off', 'fleet-a', 'active', 0)`,
    );
  });
  afterAll(() => fx?.close());

  const detail = async (url: string, id: string, key: string) => {
    const res = await fetch(`${url}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${key}` } });
    const body = (await res.json()) as { alerts?: { total: number }; latest?: { ts: string } | null };
    return {
      status: res.status,
      cache: res.headers.get('x-cache'),
      alerts: body.alerts?.total,
      latest: body.latest?.ts ?? null,
      type: res.headers.get('content-type'),
    };
  };

  it('serves an answer for at most the TTL after reading it, then reads the sources again', async () => {
    expect(await detail(fx.url, 's-cache', keyA)).toEqual({
      status: 200,
      cache: 'miss',
      alerts: 0,
      latest: null,
      type: 'application/json; charset=utf-8',
    });
    const changedAt = performance.now();
    await fx.pool.query(`UPDATE sessions SET alert_count = 3 WHERE session_id = 's-cache'`);
    const early = await detail(fx.url, 's-cache', keyA);
    if (performance.now() - changedAt < TTL_MS) expect(early).toMatchObject({ cache: 'hit', alerts: 0 });
    // Another tenant never gets tenant A's cached answer.
    expect((await detail(fx.url, 's-cache', keyB)).status).toBe(404);
    await new Promise((r) => setTimeout(r, TTL_MS + 100));
    expect(await detail(fx.url, 's-cache', keyA)).toMatchObject({ status: 200, cache: 'miss', alerts: 3 });
  });

  it('shows a score written to Redis at the next request, while the row is still cached', async () => {
    await fx.pool.query(
      `INSERT INTO sessions (session_id, tenant_id, status, alert_count) VALUES ('s-fresh', 'fleet-a', 'active', 0)`,
    );
    expect(await detail(fx.url, 's-fresh', keyA)).toMatchObject({ cache: 'miss', latest: null });
    const writtenAt = performance.now();
    const ts = Date.UTC(2026, 11, 7, 6, 0, 5);
    await fx.redis.hset(redisKeys(fx.config.topicPrefix).latest('fleet-a', 's-fresh'), {
      ts: String(ts),
      session_id: 's-fresh',
      tenant_id: 'fleet-a',
      score: '42',
      level: '1',
    });
    const next = await detail(fx.url, 's-fresh', keyA);
    expect(next.latest).toBe(new Date(ts).toISOString());
    // Within the TTL the row came from the cache: the score did not wait for it to expire.
    if (performance.now() - writtenAt < TTL_MS) expect(next.cache).toBe('hit');
  });

  it('answers a burst of concurrent misses with one read of the sources', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => detail(fx.url, 's-burst', keyA)));
    expect(answers.map((a) => a.status)).toEqual(Array<number>(20).fill(200));
    expect(answers.filter((a) => a.cache === 'miss')).toHaveLength(1);
  });

  it('reads PostgreSQL and Redis on every request with the TTL at 0', async () => {
    const url = await fx.start({ config: { ...fx.config, api: { ...fx.config.api, detailCacheMs: 0 } } });
    expect(await detail(url, 's-off', keyA)).toMatchObject({ cache: 'miss', alerts: 0 });
    await fx.pool.query(`UPDATE sessions SET alert_count = 1 WHERE session_id = 's-off'`);
    expect(await detail(url, 's-off', keyA)).toMatchObject({ cache: 'miss', alerts: 1 });
  });
});
