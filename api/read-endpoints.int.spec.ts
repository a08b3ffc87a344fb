import { createRedis } from '../core/redis';
import { redisKeys } from '../core/redis-keys';
import { testLogger } from '../test/support/env';
import { apiFixture, type ApiFixture } from '../test/support/api';
import { invalidateTenantCache } from '../core/cache';
import { encodeCursor } from './schemas';

/**
 * The read endpoints against real PostgreSQL (fresh migrated database, rows seeded by SQL) and Redis
 * (unique key prefix): exact values, errors, tenancy, hostile input, Redis down.
 */
const DAY = 86_400_000;
const MIN = 60_000;
/** 08:00 UTC ten days ago: minute- and hour-aligned, within every look-back of 30 days. */
const T0 = Math.floor(Date.now() / DAY) * DAY - 10 * DAY + 8 * 3_600_000;
const at = (ms: number) => new Date(T0 + ms).toISOString();
const A = 'fleet-a';
/** What tenant A's data looks like in a body (beyond an id the caller itself sent). */
const LEAKS = /fleet-a|alert-a\d|sess-a[2-4]/;
const B = 'fleet-b';

interface Json {
  [k: string]: unknown;
}

async function seed(fx: ApiFixture): Promise<void> {
  const q = (text: string, values: unknown[] = []) => fx.pool.query(text, values);
  const session = (
    id: string,
    tenant: string,
    driver: string | null,
    status: string,
    startedAt: number | null,
    extra: Partial<Record<string, unknown>> = {},
  ) => {
    const row: Record<string, unknown> = {
      session_id: id,
      tenant_id: tenant,
      driver_id: driver,
      vehicle_id: driver ? `veh-${driver}` : null,
      status,
      started_at: startedAt === null ? null : new Date(T0 + startedAt),
      ...extra,
    };
    const cols = Object.keys(row);
    return q(
      `INSERT INTO sessions (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
      Object.values(row),
    );
  };
  await session('sess-a1', A, 'drv-1', 'ended', 0, {
    ended_at: new Date(T0 + 10 * MIN),
    end_reason: 'completed',
    eeg_frame_count: 4500,
    first_ts: new Date(T0 + 100),
    last_ts: new Date(T0 + 450_000),
    face_frame_count: 9000,
    vehicle_frame_count: 6000,
    game_event_count: 12,
    score_count: 5,
    last_score: 40,
    last_level: 0,
    last_score_at: new Date(T0 + 5 * MIN),
    max_score: 80,
    max_level: 2,
    alert_count: 2,
    open_alert_count: 1,
    max_alert_level: 2,
    last_alert_at: new Date(T0 + 95_000),
    last_seen_at: new Date(T0 + 10 * MIN),
  });
  await session('sess-a2', A, 'drv-2', 'active', DAY, {
    last_score: 55.5,
    last_level: 1,
    last_score_at: new Date(T0 + DAY + 30 * MIN),
    max_score: 55.5,
    max_level: 1,
    alert_count: 1,
    open_alert_count: 1,
    max_alert_level: 1,
    last_seen_at: new Date(T0 + DAY + 30 * MIN),
  });
  await session('sess-a3', A, 'drv-1', 'active', 2 * DAY, { max_score: 20, max_level: 0 });
  await session('sess-a4', A, null, 'unknown', null);
  await session('sess-b1', B, 'drv-1', 'active', 3 * DAY, { max_level: 2, max_score: 90 });

  // Scores of sess-a1: two in the first minute, two in the second, one at 08:05.
  const scores: [number, number, number][] = [
    [5_000, 10, 0],
    [35_000, 30, 0],
    [65_000, 60, 1],
    [95_000, 80, 2],
    [300_000, 40, 0],
  ];
  for (const [ms, score, level] of scores) {
    await q(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, ocular, driving,
         eeg, reaction, yawn, features, baseline_ready, model_version)
       VALUES ('sess-a1', $1, gen_random_uuid(), $2, $3, $4, $5, 0.5, 0.25, NULL, 0, 0, '{}', false, 'fatigue-v1')`,
      [new Date(T0 + ms), A, new Date(T0 + ms - 60_000), score, level],
    );
  }
  await q(
    `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features,
       baseline_ready, model_version)
     VALUES ('sess-b1', $1, gen_random_uuid(), $2, $1, 99, 2, '{}', true, 'fatigue-v1')`,
    [new Date(T0 + 3 * DAY + 5_000), B],
  );

  const alert = (id: string, tenant: string, sessionId: string, fields: Record<string, unknown>) => {
    const row = { alert_id: id, tenant_id: tenant, session_id: sessionId, ...fields };
    const cols = Object.keys(row);
    return q(
      `INSERT INTO alerts (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
      Object.values(row),
    );
  };
  await alert('alert-a1', A, 'sess-a1', {
    level: 2,
    reason: 'microsleep',
    score: 80,
    status: 'active',
    raised_at: new Date(T0 + 95_000),
    escalations: 1,
    last_event_ts: new Date(T0 + 125_000),
  });
  await alert('alert-a2', A, 'sess-a1', {
    level: 1,
    reason: 'drowsy',
    score: 60,
    status: 'cleared',
    raised_at: new Date(T0 + 65_000),
    cleared_at: new Date(T0 + 120_000),
    clear_reason: 'recovered',
    last_event_ts: new Date(T0 + 120_000),
  });
  await alert('alert-a3', A, 'sess-a2', {
    level: 1,
    reason: 'drowsy',
    score: 55.5,
    status: 'acknowledged',
    raised_at: new Date(T0 + DAY + 30 * MIN),
    acknowledged_at: new Date(T0 + DAY + 31 * MIN),
    acknowledged_by: 'dispatcher-7',
    last_event_ts: new Date(T0 + DAY + 31 * MIN),
  });
  await alert('alert-b1', B, 'sess-b1', {
    level: 2,
    reason: 'microsleep',
    status: 'active',
    raised_at: new Date(T0 + 3 * DAY),
    last_event_ts: new Date(T0 + 3 * DAY),
  });
  await q(
    `INSERT INTO alert_events (event_id, ts, tenant_id, session_id, alert_id, type, level, reason, score)
     VALUES ('00000000-0000-4000-8000-000000000001', $1, $2, 'sess-a1', 'alert-a2', 'AlertRaised', 1, 'drowsy', 60),
            ('00000000-0000-4000-8000-000000000002', $3, $2, 'sess-a1', 'alert-a1', 'AlertRaised', 2, 'microsleep', 80)`,
    [new Date(T0 + 65_000), A, new Date(T0 + 95_000)],
  );
  // 4 500 EEG frames of sess-a1 (more than two export batches), 100 ms apart.
  await q(
    `INSERT INTO eeg_frames (event_id, ts, tenant_id, session_id, device_id, seq, channels)
     SELECT gen_random_uuid(), $1::timestamptz + i * interval '100 milliseconds', $2, 'sess-a1', 'eeg-1', i,
            jsonb_build_array(jsonb_build_object('name', 'Fp1', 'alpha', i))
       FROM generate_series(1, 4500) AS i`,
    [new Date(T0), A],
  );

  const report = (sessionId: string, tenant: string, driver: string, startedDaysAgo: number, r: number[]) =>
    q(
      `INSERT INTO session_reports (session_id, tenant_id, driver_id, vehicle_id, started_at, ended_at, duration_s,
         model_version, score_avg, score_max, level_max, level1_s, level2_s, alert_count, microsleep_count, report)
       VALUES ($1, $2, $3, 'veh', now() - make_interval(days => $4), now() - make_interval(days => $4) + make_interval(secs => $5),
               $5, 'fatigue-v1', $6, $7, $8, $9, $10, $11, $12, '{}')`,
      [sessionId, tenant, driver, startedDaysAgo, ...r],
    );
  // duration_s, score_avg, score_max, level_max, level1_s, level2_s, alert_count, microsleep_count
  await report('sess-a1', A, 'drv-1', 10, [600, 40, 80, 2, 60, 30, 2, 1]);
  await report('sess-a2', A, 'drv-2', 9, [1200, 25, 55, 1, 90, 0, 1, 0]);
  await report('sess-old', A, 'drv-1', 100, [300, 10, 20, 0, 0, 0, 0, 0]);
  await report('sess-b1', B, 'drv-1', 3, [900, 70, 90, 2, 300, 200, 4, 3]);

  // The Redis read model's latest score of sess-a1 (as projections/redis writes it).
  await fx.redis.hset(redisKeys(fx.config.topicPrefix).latest(A, 'sess-a1'), {
    ts: String(T0 + 5 * MIN),
    session_id: 'sess-a1',
    tenant_id: A,
    score: '40',
    level: '0',
    window_start_ts: String(T0 + 4 * MIN),
    components: JSON.stringify({ ocular: 0.5, driving: 0.25, eeg: null, reaction: 0, yawn: 0 }),
    model_version: 'fatigue-v1',
    event_id: '00000000-0000-4000-8000-00000000000a',
  });
}

const A_JOB_ID = '7f3c2a8e-5b1d-4c9a-9e2f-0a1b2c3d4e5f';

describe('query API read endpoints (real PostgreSQL and Redis)', () => {
  let fx: ApiFixture;
  const keys = {} as Record<'a' | 'b' | 'device', string>;
  let deadRedisUrl: string;
  const deadRedis = createRedis('redis://127.0.0.1:1/0');
  deadRedis.on('error', () => {});

  beforeAll(async () => {
    fx = await apiFixture({ VIGIL_API_CACHE_TTL_S: '300' });
    keys.a = await fx.key(A, 'reader');
    keys.b = await fx.key(B, 'admin');
    keys.device = await fx.key(A, 'device');
    await seed(fx);
    deadRedisUrl = await fx.start({ redis: deadRedis });
  }, 60_000);
  afterAll(async () => {
    deadRedis.disconnect();
    await fx?.close();
  });

  const get = async (path: string, key = keys.a, base = fx.url) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const text = await res.text();
    let body: Json = {};
    try {
      body = JSON.parse(text) as Json;
    } catch {
      body = { text };
    }
    return { status: res.status, headers: res.headers, body, text };
  };

  describe('GET /v1/sessions', () => {
    it("lists the tenant's sessions newest start first, not-started ones last", async () => {
      const r = await get('/v1/sessions');
      expect(r.status).toBe(200);
      expect((r.body.sessions as Json[]).map((s) => s.session_id)).toEqual([
        'sess-a3',
        'sess-a2',
        'sess-a1',
        'sess-a4',
      ]);
      expect((r.body.sessions as Json[])[2]).toEqual({
        session_id: 'sess-a1',
        tenant_id: A,
        driver_id: 'drv-1',
        vehicle_id: 'veh-drv-1',
        status: 'ended',
        started_at: at(0),
        ended_at: at(10 * MIN),
        end_reason: 'completed',
        last_seen_at: at(10 * MIN),
        last_score: 40,
        last_level: 0,
        max_score: 80,
        max_level: 2,
        alert_count: 2,
        open_alert_count: 1,
      });
      expect(r.body.next_cursor).toBeNull();
    });

    it('filters by status, driver, level and start time', async () => {
      const ids = async (qs: string) =>
        ((await get(`/v1/sessions?${qs}`)).body.sessions as Json[]).map((s) => s.session_id);
      expect(await ids('status=active')).toEqual(['sess-a3', 'sess-a2']);
      expect(await ids('driver=drv-1')).toEqual(['sess-a3', 'sess-a1']);
      expect(await ids('level=1')).toEqual(['sess-a2', 'sess-a1']);
      expect(await ids('level=2&status=ended')).toEqual(['sess-a1']);
      expect(await ids(`from=${at(DAY)}&to=${at(2 * DAY)}`)).toEqual(['sess-a2']);
    });

    it('pages with an opaque cursor until next_cursor is null', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await get(`/v1/sessions?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        expect(r.status).toBe(200);
        seen.push(...(r.body.sessions as Json[]).map((s) => s.session_id as string));
        cursor = r.body.next_cursor as string | null;
        pages++;
      } while (cursor && pages < 10);
      expect(seen).toEqual(['sess-a3', 'sess-a2', 'sess-a1', 'sess-a4']);
      expect(pages).toBe(4);
    });
  });

  describe('GET /v1/sessions/:id', () => {
    it('shows the session with counters, alert counts and the latest score from Redis', async () => {
      const r = await get('/v1/sessions/sess-a1');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        session_id: 'sess-a1',
        status: 'ended',
        latest: {
          ts: at(5 * MIN),
          window_start_ts: at(4 * MIN),
          score: 40,
          level: 0,
          components: { ocular: 0.5, driving: 0.25, eeg: null, reaction: 0, yawn: 0 },
          model_version: 'fatigue-v1',
          source: 'redis',
        },
        telemetry: {
          eeg: { frames: 4500, first_ts: at(100), last_ts: at(450_000) },
          face: { frames: 9000 },
          vehicle: { frames: 6000 },
          game: { events: 12 },
        },
        scores: { count: 5, last_at: at(5 * MIN) },
        alerts: { total: 2, open: 1, max_level: 2, last_at: at(95_000) },
      });
    });

    it("falls back to the session row's last score when Redis has none", async () => {
      const r = await get('/v1/sessions/sess-a2');
      expect(r.body.latest).toEqual({
        ts: at(DAY + 30 * MIN),
        window_start_ts: null,
        score: 55.5,
        level: 1,
        components: null,
        model_version: null,
        source: 'postgres',
      });
      expect((await get('/v1/sessions/sess-a4')).body.latest).toBeNull();
    });

    it('answers 404 for an unknown session and 400 naming id for a malformed one', async () => {
      const missing = await get('/v1/sessions/nope');
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const bad = await get(`/v1/sessions/${encodeURIComponent('a b')}`);
      expect(bad.status).toBe(400);
      expect(bad.body.errors).toEqual([{ field: 'id', message: expect.stringContaining('must be 1-128') }]);
    });
  });

  describe('GET /v1/sessions/:id/scores', () => {
    const range = `from=${at(0)}&to=${at(10 * MIN)}`;

    it('returns raw scores in [from, to) in time order', async () => {
      const r = await get(`/v1/sessions/sess-a1/scores?from=${at(30_000)}&to=${at(95_000)}`);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({
        session_id: 'sess-a1',
        bucket: 'raw',
        from: at(30_000),
        to: at(95_000),
        scores: [35_000, 65_000].map((ms, i) => ({
          ts: at(ms),
          window_start_ts: at(ms - 60_000),
          score: [30, 60][i],
          level: [0, 1][i],
          components: { ocular: 0.5, driving: 0.25, eeg: null, reaction: 0, yawn: 0 },
          baseline_ready: false,
          model_version: 'fatigue-v1',
        })),
      });
    });

    it("defaults to the session's own span", async () => {
      const r = await get('/v1/sessions/sess-a1/scores');
      expect(r.body).toMatchObject({ from: at(0), to: at(5 * MIN + 1) });
      expect((r.body.scores as Json[]).map((s) => s.score)).toEqual([10, 30, 60, 80, 40]);
    });

    it('buckets per 1m, 5m and 1h (avg, max score, max level, count)', async () => {
      const b = async (bucket: string) =>
        (await get(`/v1/sessions/sess-a1/scores?${range}&bucket=${bucket}`)).body.scores;
      expect(await b('1m')).toEqual([
        { bucket_start: at(0), score_avg: 20, score_max: 30, level_max: 0, count: 2 },
        { bucket_start: at(MIN), score_avg: 70, score_max: 80, level_max: 2, count: 2 },
        { bucket_start: at(5 * MIN), score_avg: 40, score_max: 40, level_max: 0, count: 1 },
      ]);
      expect(await b('5m')).toEqual([
        { bucket_start: at(0), score_avg: 45, score_max: 80, level_max: 2, count: 4 },
        { bucket_start: at(5 * MIN), score_avg: 40, score_max: 40, level_max: 0, count: 1 },
      ]);
      expect(await b('1h')).toEqual([{ bucket_start: at(0), score_avg: 44, score_max: 80, level_max: 2, count: 5 }]);
    });

    it('refuses reversed and over-long ranges, naming the field', async () => {
      const reversed = await get(`/v1/sessions/sess-a1/scores?from=${at(MIN)}&to=${at(0)}`);
      expect(reversed.status).toBe(400);
      expect(reversed.body.errors).toEqual([{ field: 'to', message: 'must be after from (the range is [from, to))' }]);
      const long = await get(`/v1/sessions/sess-a1/scores?from=2000-01-01T00:00:00Z&to=${at(0)}`);
      expect(long.status).toBe(400);
      expect(long.body.errors).toEqual([{ field: 'to', message: 'the range may span at most 1 days with bucket=raw' }]);
      const unbounded = await get('/v1/sessions/sess-a1/scores?from=1970-01-01T00:00:00Z&bucket=1h');
      expect(unbounded.status).toBe(400);
      expect(unbounded.body.errors).toEqual([
        { field: 'from', message: 'the range may span at most 366 days with bucket=1h' },
      ]);
      const badBucket = await get('/v1/sessions/sess-a1/scores?bucket=1d');
      expect(badBucket.status).toBe(400);
      expect((badBucket.body.errors as Json[])[0]!.field).toBe('bucket');
    });
  });

  describe('alerts', () => {
    it("lists a session's alerts newest first", async () => {
      const r = await get('/v1/sessions/sess-a1/alerts');
      expect(r.status).toBe(200);
      expect(r.body.alerts).toEqual([
        {
          alert_id: 'alert-a1',
          session_id: 'sess-a1',
          level: 2,
          reason: 'microsleep',
          score: 80,
          status: 'active',
          raised_at: at(95_000),
          escalations: 1,
          acknowledged_at: null,
          acknowledged_by: null,
          cleared_at: null,
          clear_reason: null,
          last_event_ts: at(125_000),
        },
        expect.objectContaining({
          alert_id: 'alert-a2',
          status: 'cleared',
          cleared_at: at(120_000),
          clear_reason: 'recovered',
        }),
      ]);
    });

    it("lists the tenant's alerts by state, with pages", async () => {
      const ids = async (qs: string) => ((await get(`/v1/alerts?${qs}`)).body.alerts as Json[]).map((a) => a.alert_id);
      expect(await ids('')).toEqual(['alert-a1']);
      expect(await ids('state=acknowledged')).toEqual(['alert-a3']);
      expect(await ids('state=cleared')).toEqual(['alert-a2']);
      expect(await ids('state=all')).toEqual(['alert-a3', 'alert-a1', 'alert-a2']);
      const p1 = await get('/v1/alerts?state=all&limit=2');
      expect((p1.body.alerts as Json[]).map((a) => a.alert_id)).toEqual(['alert-a3', 'alert-a1']);
      const p2 = await get(`/v1/alerts?state=all&limit=2&cursor=${p1.body.next_cursor as string}`);
      expect((p2.body.alerts as Json[]).map((a) => a.alert_id)).toEqual(['alert-a2']);
      expect(p2.body.next_cursor).toBeNull();
    });
  });

  describe('reports (cache-aside)', () => {
    it('lists the session reports of the last days with totals, then serves them from the cache', async () => {
      const first = await get('/v1/reports/sessions?days=30');
      expect(first.status).toBe(200);
      expect(first.headers.get('x-cache')).toBe('miss');
      expect((first.body.reports as Json[]).map((x) => x.session_id)).toEqual(['sess-a2', 'sess-a1']);
      expect((first.body.reports as Json[])[1]).toMatchObject({
        session_id: 'sess-a1',
        driver_id: 'drv-1',
        duration_s: 600,
        score_avg: 40,
        score_max: 80,
        level_max: 2,
        level1_s: 60,
        level2_s: 30,
        alert_count: 2,
        microsleep_count: 1,
      });
      expect(first.body.totals).toEqual({
        sessions: 2,
        duration_s: 1800,
        level1_s: 150,
        level2_s: 30,
        alert_count: 3,
        microsleep_count: 1,
        score_max: 80,
        level_max: 2,
        score_avg: 30,
      });
      expect(first.body.truncated).toBe(false);
      const second = await get('/v1/reports/sessions?days=30');
      expect(second.headers.get('x-cache')).toBe('hit');
      expect(second.body).toEqual(first.body);
      expect(((await get('/v1/reports/sessions?days=365')).body.totals as Json).sessions).toBe(3);
    });

    it('serves stale answers until the tenant cache is invalidated', async () => {
      await get('/v1/reports/sessions?days=7');
      await fx.pool.query(
        `INSERT INTO session_reports (session_id, tenant_id, driver_id, started_at, duration_s, alert_count, report)
         VALUES ('sess-new', $1, 'drv-2', now() - interval '1 hour', 60, 0, '{}')`,
        [A],
      );
      const stale = await get('/v1/reports/sessions?days=7');
      expect(stale.headers.get('x-cache')).toBe('hit');
      expect((stale.body.totals as Json).sessions).toBe(0);
      await invalidateTenantCache(fx.redis, fx.config.topicPrefix, A);
      const fresh = await get('/v1/reports/sessions?days=7');
      expect(fresh.headers.get('x-cache')).toBe('miss');
      expect((fresh.body.reports as Json[]).map((x) => x.session_id)).toEqual(['sess-new']);
      await fx.pool.query(`DELETE FROM session_reports WHERE session_id = 'sess-new'`);
      await invalidateTenantCache(fx.redis, fx.config.topicPrefix, A);
    });

    it("aggregates a driver's sessions and reports", async () => {
      const r = await get('/v1/drivers/drv-1/report?days=30');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        driver_id: 'drv-1',
        days: 30,
        sessions: {
          total: 2,
          active: 1,
          ended: 1,
          alert_count: 2,
          max_level: 2,
          max_score: 80,
          last_started_at: at(2 * DAY),
        },
        reports: {
          sessions: 1,
          duration_s: 600,
          level1_s: 60,
          level2_s: 30,
          alert_count: 2,
          microsleep_count: 1,
          score_max: 80,
          level_max: 2,
          score_avg: 40,
        },
      });
      expect((await get('/v1/drivers/drv-1/report?days=30')).headers.get('x-cache')).toBe('hit');
      expect((await get('/v1/drivers/nobody/report')).status).toBe(404);
    });
  });

  describe('GET /v1/sessions/:id/export', () => {
    it('streams scores as CSV with a header row', async () => {
      const r = await get('/v1/sessions/sess-a1/export?format=csv&stream=scores');
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(r.headers.get('content-disposition')).toBe('attachment; filename="sess-a1-scores.csv"');
      const lines = r.text.trimEnd().split('\n');
      expect(lines[0]).toBe(
        'ts,window_start_ts,score,level,ocular,driving,eeg,reaction,yawn,baseline_ready,model_version,event_id',
      );
      expect(lines).toHaveLength(6);
      expect(lines[1]).toMatch(
        new RegExp(`^${at(5_000)},${at(-55_000)},10,0,0.5,0.25,,0,0,false,fatigue-v1,[0-9a-f-]{36}$`),
      );
    });

    it('streams every EEG frame as NDJSON in order, across batches', async () => {
      const r = await get('/v1/sessions/sess-a1/export?format=ndjson&stream=eeg');
      expect(r.headers.get('content-type')).toBe('application/x-ndjson');
      const rows = r.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Json);
      expect(rows).toHaveLength(4500);
      expect(rows.map((x) => x.seq)).toEqual(Array.from({ length: 4500 }, (_, i) => String(i + 1)));
      expect(rows[0]).toMatchObject({ ts: at(100), device_id: 'eeg-1', channels: [{ name: 'Fp1', alpha: 1 }] });
    });

    it('exports alert events and answers an empty stream with the header only', async () => {
      const alerts = await get('/v1/sessions/sess-a1/export?format=csv&stream=alerts');
      expect(alerts.text).toBe(
        'ts,event_id,alert_id,type,level,reason,score,escalation,acknowledged_by\n' +
          `${at(65_000)},00000000-0000-4000-8000-000000000001,alert-a2,AlertRaised,1,drowsy,60,,\n` +
          `${at(95_000)},00000000-0000-4000-8000-000000000002,alert-a1,AlertRaised,2,microsleep,80,,\n`,
      );
      const empty = await get('/v1/sessions/sess-a1/export?format=csv&stream=face');
      expect(empty.text).toBe(
        'ts,event_id,device_id,seq,face_detected,eye_closure,mouth_open,head_pitch_deg,head_yaw_deg,head_roll_deg\n',
      );
      expect((await get('/v1/sessions/sess-a1/export?format=xml')).status).toBe(400);
    });
  });

  describe('tenancy', () => {
    /** Every GET route under /v1 with tenant A's ids in its path, as tenant B's (admin) key sees it. */
    const routes = [
      '/v1/sessions/sess-a1',
      '/v1/sessions/sess-a1/scores',
      '/v1/sessions/sess-a1/scores?bucket=1h',
      '/v1/sessions/sess-a1/alerts',
      '/v1/sessions/sess-a1/export?stream=eeg&format=ndjson',
      '/v1/drivers/drv-2/report',
    ];

    it("answers 404 to another tenant's session and driver on every route", async () => {
      for (const path of routes) {
        const r = await get(path, keys.b);
        expect({ path, status: r.status }).toEqual({ path, status: 404 });
        // The same answer as for an id that exists nowhere: only the id the caller sent is echoed.
        expect(r.body).toEqual({
          type: 'https://vigil.dev/problems/not-found',
          title: 'Not found',
          status: 404,
          detail: path.startsWith('/v1/drivers') ? 'driver drv-2 not found' : 'session sess-a1 not found',
        });
      }
    });

    it("lists only the caller's tenant in every list route", async () => {
      const lists = {
        '/v1/sessions': ['sess-b1'],
        '/v1/alerts?state=all': ['alert-b1'],
        '/v1/reports/sessions?days=365': ['sess-b1'],
      };
      for (const [path, expected] of Object.entries(lists)) {
        const r = await get(path, keys.b);
        expect(r.status).toBe(200);
        const items = (r.body.sessions ?? r.body.alerts ?? r.body.reports) as Json[];
        expect(
          items.map((x) => (x.session_id === undefined || path.includes('alerts') ? x.alert_id : x.session_id)),
        ).toEqual(expected);
        expect(r.text).not.toContain(A);
      }
      // drv-1 drives in both tenants: B sees only its own session of drv-1.
      const d = await get('/v1/drivers/drv-1/report?days=30', keys.b);
      expect(d.body).toMatchObject({
        sessions: { total: 1, max_score: 90 },
        reports: { sessions: 1, duration_s: 900 },
      });
    });

    it('sweeps every registered GET /v1 route: tenant B never sees tenant A', async () => {
      // Tenant A's ids: its driver, its session, and for job routes an id no job of B's has.
      const idFor = (p: string) =>
        p.startsWith('/v1/drivers') ? 'drv-2' : p.startsWith('/v1/admin/replays') ? A_JOB_ID : 'sess-a1';
      const doc = (await (await fetch(`${fx.url}/docs/openapi.json`)).json()) as { paths: Record<string, Json> };
      const gets = Object.entries(doc.paths)
        .filter(([p, ops]) => p.startsWith('/v1/') && ops.get)
        .map(([p]) => p.replace('{id}', idFor(p)));
      expect(gets.length).toBeGreaterThanOrEqual(8);
      for (const path of gets) {
        const res = await fetch(`${fx.url}${path}`, {
          headers: { authorization: `Bearer ${keys.b}` },
          signal: AbortSignal.timeout(5_000),
        });
        // An SSE route would hold the connection: only its status and first bytes matter.
        const text = res.headers.get('content-type')?.startsWith('text/event-stream') ? '' : await res.text();
        if (path.includes(A_JOB_ID)) {
          // This fixture runs no pg-boss (503); another tenant's job is a 404 in api/admin.int.spec.ts.
          expect({ path, status: res.status }).toEqual({ path, status: 503 });
        } else if (path.includes('sess-a1') || path.includes('drv-2')) {
          expect({ path, status: res.status }).toEqual({ path, status: 404 });
        } else {
          expect({ path, ok: res.status === 200 || res.status === 403 }).toEqual({ path, ok: true });
        }
        expect(text).not.toMatch(LEAKS);
        if (res.status !== 404) expect(text).not.toContain('sess-a1');
        await res.body?.cancel().catch(() => {});
      }
    });
  });

  describe('hostile input', () => {
    const sqlish = ["' OR 1=1 --", '1; DROP TABLE sessions', '"; SELECT pg_sleep(5); --', '%00', '\u0000'];

    it('refuses SQL metacharacters in every parameter with a 400 naming it', async () => {
      const params: Record<string, string[]> = {
        '/v1/sessions': ['status', 'driver', 'level', 'from', 'to', 'limit', 'cursor'],
        '/v1/sessions/sess-a1/scores': ['from', 'to', 'bucket'],
        '/v1/sessions/sess-a1/alerts': ['limit'],
        '/v1/alerts': ['state', 'limit', 'cursor'],
        '/v1/reports/sessions': ['days'],
        '/v1/drivers/drv-1/report': ['days'],
        '/v1/sessions/sess-a1/export': ['format', 'stream'],
      };
      for (const [path, names] of Object.entries(params)) {
        for (const name of names) {
          for (const v of sqlish) {
            const r = await get(`${path}?${name}=${encodeURIComponent(v)}`);
            expect({ path, name, v, status: r.status }).toEqual({ path, name, v, status: 400 });
            expect((r.body.errors as Json[]).map((e) => e.field)).toEqual([name]);
            expect(r.text).not.toMatch(/syntax|relation|postgres|at .*\.ts/i);
          }
        }
      }
      for (const v of sqlish) {
        for (const path of [
          '/v1/sessions/:x',
          '/v1/sessions/:x/scores',
          '/v1/drivers/:x/report',
          '/v1/sessions/:x/export',
        ]) {
          const r = await get(path.replace(':x', encodeURIComponent(v)));
          expect({ path, v, status: r.status }).toEqual({ path, v, status: 400 });
        }
      }
      expect((await fx.pool.query('SELECT count(*)::int AS n FROM sessions')).rows[0].n).toBe(5);
    });

    it('refuses malformed and forged cursors, repeated parameters and invalid UTF-8', async () => {
      const cursors = [
        'not a cursor',
        'AAAA',
        encodeCursor({ a: 1 }),
        encodeCursor(['yesterday', 'sess-a1']),
        encodeCursor([null]),
        'x'.repeat(600),
      ];
      for (const c of cursors) {
        for (const path of ['/v1/sessions', '/v1/alerts']) {
          const r = await get(`${path}?cursor=${encodeURIComponent(c)}`);
          expect({ path, c, status: r.status }).toEqual({ path, c, status: 400 });
          expect(r.body.errors).toEqual([{ field: 'cursor', message: expect.any(String) }]);
        }
      }
      const twice = await get('/v1/sessions?limit=1&limit=2');
      expect(twice.status).toBe(400);
      expect((twice.body.errors as Json[])[0]!.field).toBe('limit');
      const utf8q = await get('/v1/sessions?driver=%ff%fe');
      expect(utf8q.status).toBe(400);
      const utf8p = await get('/v1/sessions/%ff');
      expect(utf8p.status).toBe(400);
      expect(utf8p.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const huge = await get(`/v1/sessions?driver=${'d'.repeat(5_000)}`);
      expect(huge.status).toBe(400);
      const limit = await get('/v1/sessions?limit=100000');
      expect(limit.status).toBe(400);
    });

    it('refuses device keys on every read route', async () => {
      for (const path of ['/v1/sessions', '/v1/sessions/sess-a1', '/v1/alerts', '/v1/reports/sessions']) {
        expect((await get(path, keys.device)).status).toBe(403);
      }
    });
  });

  describe('Redis down', () => {
    it('still answers reads from PostgreSQL', async () => {
      const detail = await get('/v1/sessions/sess-a1', keys.a, deadRedisUrl);
      expect(detail.status).toBe(200);
      expect(detail.body.latest).toEqual({
        ts: at(5 * MIN),
        window_start_ts: null,
        score: 40,
        level: 0,
        components: null,
        model_version: null,
        source: 'postgres',
      });
      const reports = await get('/v1/reports/sessions?days=30', keys.a, deadRedisUrl);
      expect(reports.status).toBe(200);
      expect(reports.headers.get('x-cache')).toBe('bypass');
      expect((reports.body.totals as Json).sessions).toBe(2);
      const driver = await get('/v1/drivers/drv-1/report?days=30', keys.a, deadRedisUrl);
      expect(driver.status).toBe(200);
      for (const path of ['/v1/sessions', '/v1/alerts', '/v1/sessions/sess-a1/scores?bucket=1m']) {
        expect((await get(path, keys.a, deadRedisUrl)).status).toBe(200);
      }
      expect(testLogger).toBeDefined();
    });
  });
});
