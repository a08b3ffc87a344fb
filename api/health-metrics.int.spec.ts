import { apiFixture, type ApiFixture } from '../test/support/api';
import { eventually } from '../test/support/env';
import { kafkaFixture, type KafkaFixture } from '../test/support/stack';
import { redisKeys } from '../core/redis-keys';
import { fullHealth, projectionLag } from './health-report';
import { lagCheck } from '../core/http/health';
import { onTimescale } from '../test/support/database-path';

/**
 * Readiness with projection lag, the full `/health` report and `/metrics`, against real PostgreSQL,
 * Redis and Kafka: values present and exact where they can be (lag of known offsets, request counts).
 */
describe('health and metrics (real PostgreSQL, Redis, Kafka)', () => {
  let fx: ApiFixture;
  let kfx: KafkaFixture;
  const keys = {} as Record<'admin' | 'reader' | 'operator', string>;
  let start: (maxLag: number) => Promise<string>;

  beforeAll(async () => {
    fx = await apiFixture();
    kfx = await kafkaFixture(fx.config);
    keys.admin = await fx.key('fleet-a', 'admin');
    keys.reader = await fx.key('fleet-a', 'reader');
    keys.operator = await fx.key('', 'operator');
    // 5 records on partition 0 of the scores topic; the scores projection has checkpointed none of
    // them, the Redis projection 2 of them.
    const producer = kfx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: kfx.topics.scores,
      messages: Array.from({ length: 5 }, (_, i) => ({ partition: 0, key: 's', value: Buffer.from([i]) })),
    });
    await producer.disconnect();
    await fx.pool.query(
      `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ('scores', $1, 0, 0)`,
      [kfx.topics.scores],
    );
    await fx.redis.hset(redisKeys(fx.config.topicPrefix).checkpoints('redis'), `${kfx.topics.scores}:0`, '2');
    const lag = () => projectionLag(fx.pool, kfx.admin, fx.redis, fx.config.topicPrefix);
    start = (maxLag) =>
      fx.start({
        checks: { postgres: () => fx.pool.query('SELECT 1'), projection_lag: lagCheck(lag, maxLag) },
        healthReport: () =>
          fullHealth({
            pool: fx.pool,
            redis: fx.redis,
            admin: kfx.admin,
            prefix: fx.config.topicPrefix,
            version: '9.9.9',
          }),
      });
  });
  afterAll(async () => {
    await kfx?.close();
    await fx?.close();
  });

  it('is ready while the projection lag is within VIGIL_READY_MAX_LAG and reports it per projection', async () => {
    const url = await start(8);
    const res = await fetch(`${url}/health/ready`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { checks: Record<string, unknown> };
    expect(body.checks.projection_lag).toMatchObject({
      status: 'up',
      required: true,
      report: { total: 8, byProjection: { scores: 5, redis: 3 } },
    });
  });

  it('answers 503 problem+json naming the check when the lag exceeds the threshold', async () => {
    const url = await start(7);
    const res = await fetch(`${url}/health/ready`);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({
      status: 503,
      title: 'Service Unavailable',
      detail: 'not ready: projection_lag down',
      failed: ['projection_lag'],
      checks: {
        postgres: { status: 'up' },
        projection_lag: {
          status: 'down',
          required: true,
          report: { total: 8, byProjection: { scores: 5, redis: 3 } },
        },
      },
    });
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
  });

  it('shows anonymous callers no dependency error text: only up/down per dependency', async () => {
    const url = await fx.start({
      checks: {
        postgres: async () => {
          throw new Error('password authentication failed for user "vigil" at db.internal:5432');
        },
        redis: { required: false, check: async () => 'PONG' },
      },
    });
    const res = await fetch(`${url}/health/ready`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).not.toContain('password');
    expect(text).not.toContain('db.internal');
    expect(JSON.parse(text)).toEqual({
      type: 'https://vigil.dev/problems/not-ready',
      title: 'Service Unavailable',
      status: 503,
      detail: 'not ready: postgres down',
      failed: ['postgres'],
      checks: { postgres: { status: 'down', required: true }, redis: { status: 'up', required: false } },
    });
  });

  it('answers /health/ready from a cache of about 1 s: a burst runs the checks once', async () => {
    let runs = 0;
    const url = await fx.start({
      checks: {
        postgres: async () => {
          runs++;
        },
      },
    });
    const burst = await Promise.all(Array.from({ length: 20 }, () => fetch(`${url}/health/ready`)));
    expect(burst.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(runs).toBe(1);
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    expect(runs).toBe(1);
    await new Promise((r) => setTimeout(r, 1_100));
    await fetch(`${url}/health/ready`);
    expect(runs).toBe(2);
  });

  it('serves the full report to operator keys only, with versions, lag, queues, process and host figures', async () => {
    const url = await start(7);
    expect((await fetch(`${url}/health`)).status).toBe(401);
    expect((await fetch(`${url}/health`, { headers: { authorization: `Bearer ${keys.reader}` } })).status).toBe(403);
    // A tenant admin sees no other tenant's lag nor the hosts.
    expect((await fetch(`${url}/health`, { headers: { authorization: `Bearer ${keys.admin}` } })).status).toBe(403);
    const res = await fetch(`${url}/health`, { headers: { authorization: `Bearer ${keys.operator}` } });
    expect(res.status).toBe(200);
    const h = (await res.json()) as Record<string, Record<string, unknown>>;
    expect(h).toMatchObject({
      status: 'up',
      version: '9.9.9',
      node: process.version,
      postgres: { version: expect.stringMatching(/^\d+\.\d+/) },
      // TimescaleDB's own facts on the TimescaleDB path (project int); `installed: false` on plain tables.
      timescaledb: onTimescale()
        ? {
            installed: true,
            version: '2.28.3',
            hypertables: expect.arrayContaining([
              {
                name: 'eeg_frames',
                chunk_interval: '06:00:00',
                chunks: 0,
                size_bytes: expect.any(Number),
                compression_enabled: true,
                compressed_chunks: 0,
                before_compression_bytes: null,
                after_compression_bytes: null,
                compression_ratio: null,
              },
            ]),
            continuous_aggregates: [{ view_name: 'fatigue_scores_1m', materialized_only: false }],
            jobs: expect.arrayContaining([
              expect.objectContaining({ proc: 'policy_retention', target: 'eeg_frames', schedule_interval: '1 day' }),
              expect.objectContaining({ proc: 'policy_refresh_continuous_aggregate', schedule_interval: '00:01:00' }),
            ]),
          }
        : { installed: false },
      redis: { version: expect.stringMatching(/^\d+\.\d+\.\d+$/) },
      kafka: { brokers: 1 },
      projection_lag: { total: 8 },
      jobs: { installed: false },
      // The readiness checks with their error text, for the operator.
      readiness: {
        ready: false,
        failed: ['projection_lag'],
        checks: {
          projection_lag: { status: 'down', error: 'projection lag 8 > 7 (VIGIL_READY_MAX_LAG)', required: true },
        },
      },
    });
    expect(h.process!.rss_bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(h.process!.heap_used_bytes).toBeLessThan(h.process!.rss_bytes as number);
    expect(h.host!.memory_total_bytes).toBeGreaterThan(h.host!.memory_free_bytes as number);
    expect(h.host!.load_avg).toHaveLength(3);
    expect(h.host!.cpus).toBeGreaterThan(0);
    const disk = h.host!.postgres_data_disk as { free_bytes?: number; total_bytes?: number; error?: string };
    expect(disk.error ?? disk.free_bytes! <= disk.total_bytes!).toBeTruthy();
  });

  it('counts requests by route template, 5xx errors, latency and cache hits in /metrics', async () => {
    const url = await start(7); // unready: /health/ready answers 503
    // Instruments are per process: compare with what earlier tests left.
    const before = await (await fetch(`${url}/metrics`)).text();
    const N = 7;
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${url}/v1/sessions/no-such-${i}`, {
        headers: { authorization: `Bearer ${keys.reader}` },
      });
      expect(res.status).toBe(404);
    }
    await fetch(`${url}/health/ready`);
    await fetch(`${url}/no/such/path`);
    const report = () =>
      fetch(`${url}/v1/reports/sessions?days=30`, { headers: { authorization: `Bearer ${keys.reader}` } });
    expect((await report()).headers.get('x-cache')).toBe('miss');
    expect((await report()).headers.get('x-cache')).toBe('hit');
    expect((await report()).headers.get('x-cache')).toBe('hit');

    const text = await eventually(
      async () => (await fetch(`${url}/metrics`)).text(),
      (t) => t.includes('vigil_api_cache_hits_total'),
    );
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN) - Number(re.exec(before)?.[1] ?? 0);
    expect(
      value(/^vigil_api_requests_total\{method="GET",route="\/v1\/sessions\/:id",status="404"[^}]*\} (\S+)$/m),
    ).toBe(N);
    expect(
      value(/^vigil_api_request_duration_seconds_count\{method="GET",route="\/v1\/sessions\/:id"[^}]*\} (\S+)$/m),
    ).toBe(N);
    expect(value(/^vigil_api_errors_total\{method="GET",route="\/health\/ready",status="503"[^}]*\} (\S+)$/m)).toBe(1);
    expect(value(/^vigil_api_requests_total\{method="GET",route="unmatched",status="404"[^}]*\} (\S+)$/m)).toBe(1);
    expect(value(/^vigil_api_cache_hits_total\{cache="\/v1\/reports\/sessions"[^}]*\} (\S+)$/m)).toBe(2);
    expect(value(/^vigil_api_cache_misses_total\{cache="\/v1\/reports\/sessions"[^}]*\} (\S+)$/m)).toBe(1);
    expect(value(/^vigil_api_cache_hit_ratio\{cache="\/v1\/reports\/sessions"[^}]*\} (\S+)$/m)).toBeCloseTo(2 / 3, 5);
    expect(text).not.toContain('no-such-');
  });
});
