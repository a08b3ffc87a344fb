import { apiFixture, type ApiFixture } from '../test/support/api';
import { openSse, type SseClient } from '../test/support/sse';
import { eventually, testLogger } from '../test/support/env';
import { uuidFrom } from '../processors/fatigue/ids';
import type { AlertEvent, AlertEventKind, FaceFrame, FatigueScored, SessionEvent } from '../schemas/types';
import type { TopicKey } from '../schemas/catalogue';
import type { ProjectedRecord, ReadModel } from '../projections/model';
import { sessionsModel } from '../projections/sessions/model';
import { faceModel } from '../projections/face/model';
import { scoresModel } from '../projections/scores/model';
import { alertsModel } from '../projections/alerts/model';
import { defaultRedisModelOptions, projectRedis } from '../projections/redis/model';
import { redisScripts } from '../projections/redis/scripts';
import { writeSessionReport } from '../jobs/reports/job';
import { FeedHub } from './feed-hub';
import { buildFace, buildScore } from '../test/support/build';

/**
 * Issue 11, session ownership, read side: the pair (tenant_id, session_id) identifies a session in
 * every read-model table, Redis key and API query. Two tenants' events naming the same session id
 * (and the alert ids derived from it) are projected by the real read-model statements and Redis
 * scripts into a fresh database and Redis; then each tenant's rows must be exactly its own, and the
 * API must answer each key with its own tenant's data only: another tenant's session is a 404
 * problem+json on every route that takes a session id, never data.
 */
const MIN = 60_000;
/** Two hours ago, minute-aligned: inside the reports' look-back of one day. */
const T0 = Math.floor(Date.now() / MIN) * MIN - 120 * MIN;
const at = (s: number) => T0 + s * 1000;
const iso = (s: number) => new Date(at(s)).toISOString();
const A = 'fleet-a';
const B = 'fleet-b';
const SHARED = 'shared-1';
const A_ONLY = 'a-only-1';
const ALERT = `al-${SHARED}`;

const started = (tenant: string, session: string, s: number, driver: string): SessionEvent => ({
  event_id: uuidFrom('tenant-spec', tenant, session, 'start'),
  tenant_id: tenant,
  session_id: session,
  ts: at(s),
  event: { type: 'SessionStarted', driver_id: driver, vehicle_id: `veh-${driver}`, devices: [] },
});
const ended = (tenant: string, session: string, s: number): SessionEvent => ({
  event_id: uuidFrom('tenant-spec', tenant, session, 'end'),
  tenant_id: tenant,
  session_id: session,
  ts: at(s),
  event: { type: 'SessionEnded', reason: 'COMPLETED' },
});
const face = (tenant: string, session: string, s: number) =>
  buildFace({ tenant_id: tenant, session_id: session, ts: at(s), seq: s });
const score = (tenant: string, session: string, s: number, value: number, level: number) =>
  buildScore({ tenant_id: tenant, session_id: session, ts: at(s), score: value, level });
const alert = (tenant: string, session: string, s: number, event: AlertEventKind): AlertEvent => ({
  event_id: uuidFrom('tenant-spec', tenant, event.alert_id, event.type, s),
  tenant_id: tenant,
  session_id: session,
  ts: at(s),
  event,
});

interface TenantInput {
  sessions: SessionEvent[];
  face: FaceFrame[];
  scores: FatigueScored[];
  alerts: AlertEvent[];
}

/** Tenant A: the shared session id ended, scored 20 then 70, one level-1 alert raised and cleared; and a session only A has. */
const inputA: TenantInput = {
  sessions: [
    started(A, SHARED, 0, 'drv-a'),
    ended(A, SHARED, 300),
    started(A, A_ONLY, 0, 'drv-a2'),
    ended(A, A_ONLY, 200),
  ],
  face: [face(A, SHARED, 10), face(A, SHARED, 20), face(A, SHARED, 70), face(A, A_ONLY, 10)],
  scores: [score(A, SHARED, 60, 20, 0), score(A, SHARED, 120, 70, 1), score(A, A_ONLY, 60, 33, 0)],
  alerts: [
    alert(A, SHARED, 120, { type: 'AlertRaised', alert_id: ALERT, level: 1, reason: 'drowsy', score: 70 }),
    alert(A, SHARED, 300, { type: 'AlertCleared', alert_id: ALERT, reason: 'session_ended' }),
    alert(A, A_ONLY, 60, { type: 'AlertRaised', alert_id: 'al-a-only', level: 1, reason: 'drowsy', score: 33 }),
  ],
};

/**
 * Tenant B names A's session id and alert id: another driver and start, its own frames, a score at the
 * same window end as A's (60 s) and one more, an alert of the same id at a higher level, escalated.
 * Had any of it reached A's rows, A's driver, start, counts, maxima, alert level and status would move.
 */
const inputB: TenantInput = {
  sessions: [started(B, SHARED, 5, 'drv-b')],
  face: [face(B, SHARED, 15), face(B, SHARED, 25)],
  scores: [score(B, SHARED, 60, 99, 2), score(B, SHARED, 90, 95, 2)],
  alerts: [
    alert(B, SHARED, 100, { type: 'AlertRaised', alert_id: ALERT, level: 2, reason: 'microsleep', score: 95 }),
    alert(B, SHARED, 130, { type: 'AlertEscalated', alert_id: ALERT, level: 2, count: 3 }),
  ],
};

describe('tenant identity: (tenant_id, session_id) in the read models, Redis and the API', () => {
  let fx: ApiFixture;
  let hub: FeedHub;
  let url: string;
  const keys = {} as Record<'a' | 'b', string>;
  const clients: SseClient[] = [];

  const records = (topic: TopicKey, values: readonly unknown[]): ProjectedRecord[] =>
    values.map((value, i) => ({ topic, partition: 0, offset: String(i), value }));
  const project = async (model: ReadModel, topic: TopicKey, values: readonly unknown[]) => {
    for (const st of model.project(records(topic, values))) await fx.pool.query(st.text, st.values);
  };
  /** One batch per read model, as `vigil project` applies them, and the Redis model's scripts. */
  const projectAll = async (...inputs: TenantInput[]) => {
    const all = (k: keyof TenantInput): unknown[] => inputs.flatMap((i): unknown[] => i[k]);
    await project(sessionsModel, 'sessions', all('sessions'));
    await project(faceModel, 'face', all('face'));
    await project(scoresModel, 'scores', all('scores'));
    await project(alertsModel, 'alerts', all('alerts'));
    await projectRedis(
      [
        ...records('sessions', all('sessions')),
        ...records('scores', all('scores')),
        ...records('alerts', all('alerts')),
      ],
      { ...defaultRedisModelOptions, prefix: fx.config.topicPrefix },
    ).reduce(async (prev, op) => {
      await prev;
      const s = redisScripts[op.script];
      await fx.redis.eval(s.lua, s.numberOfKeys, ...op.keys, ...op.args);
    }, Promise.resolve());
  };
  const report = (tenant: string, session: string, endS: number) =>
    writeSessionReport(
      fx.pool,
      { tenant_id: tenant, session_id: session, ended_at: at(endS), end_reason: 'COMPLETED' },
      { finalAttempt: true },
    );

  /** Everything the read models hold for one tenant's session (write times left out). */
  const rowsOf = async (tenant: string, session: string) => {
    const q = async (sql: string) => (await fx.pool.query(sql, [tenant, session])).rows;
    const where = 'WHERE tenant_id = $1 AND session_id = $2';
    const [s] = await q(`SELECT * FROM sessions ${where}`);
    const [r] = await q(`SELECT * FROM session_reports ${where}`);
    return {
      session: s && { ...s, updated_at: undefined },
      scores: await q(`SELECT ts, event_id, score, level FROM fatigue_scores ${where} ORDER BY ts`),
      face: await q(`SELECT event_id FROM face_frames ${where} ORDER BY ts`),
      alertEvents: await q(`SELECT event_id FROM alert_events ${where} ORDER BY ts`),
      alerts: (await q(`SELECT * FROM alerts ${where} ORDER BY alert_id`)).map((a) => ({
        ...a,
        updated_at: undefined,
      })),
      report: r && { ...r, generated_at: undefined },
    };
  };

  const get = async (path: string, key: string) => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type'), text };
  };
  const json = async (path: string, key: string) => {
    const r = await get(path, key);
    expect(r.status).toBe(200);
    return JSON.parse(r.text) as Record<string, unknown>;
  };
  const playback = async (session: string, key: string) => {
    const c = await openSse(`${url}/v1/sessions/${session}/playback?speed=32`, { authorization: `Bearer ${key}` });
    clients.push(c);
    await c.ended;
    return c.messages.map((m) => ({ event: m.event, data: JSON.parse(m.data) as Record<string, unknown> }));
  };

  let beforeB: Awaited<ReturnType<typeof rowsOf>>;

  beforeAll(async () => {
    fx = await apiFixture();
    keys.a = await fx.key(A, 'reader');
    keys.b = await fx.key(B, 'reader');
    hub = new FeedHub(fx.redis, testLogger(), { blockMs: 300, count: 100 });
    url = await fx.start({ live: { hub, sse: { heartbeatMs: 5_000, maxBufferedBytes: 1024 * 1024 } } });
    await projectAll(inputA);
    await report(A, SHARED, 300);
    await report(A, A_ONLY, 200);
    beforeB = await rowsOf(A, SHARED);
    // B's events arrive in the same batches as a redelivery of all of A's: one statement per model
    // holds both tenants' rows of one session id.
    await projectAll(inputA, inputB);
    await report(B, SHARED, 200);
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await hub?.close();
    await fx?.close();
  });

  describe('projections', () => {
    it("leave tenant A's rows of a session exactly as they were when tenant B's events name the same session and alert ids", async () => {
      const now = await rowsOf(A, SHARED);
      expect(now).toEqual(beforeB);
      expect(now.session).toMatchObject({
        driver_id: 'drv-a',
        status: 'ended',
        started_at: new Date(at(0)),
        face_frame_count: '3',
        score_count: '2',
        last_score: 70,
        max_score: 70,
        max_level: 1,
        alert_count: 1,
        open_alert_count: 0,
        max_alert_level: 1,
      });
      expect(now.scores.map((s) => [s.ts.getTime(), s.score])).toEqual([
        [at(60), 20],
        [at(120), 70],
      ]);
      expect(now.alerts).toMatchObject([{ alert_id: ALERT, level: 1, escalations: 0, status: 'cleared' }]);
      expect(now.report).toMatchObject({ driver_id: 'drv-a', score_max: 70, alert_count: 1 });
    });

    it("keep tenant B's session of the same id as a session of its own, with only B's rows", async () => {
      const b = await rowsOf(B, SHARED);
      expect(b.session).toMatchObject({
        tenant_id: B,
        driver_id: 'drv-b',
        status: 'active',
        started_at: new Date(at(5)),
        face_frame_count: '2',
        score_count: '2',
        last_score: 95,
        max_score: 99,
        max_level: 2,
        alert_count: 1,
        open_alert_count: 1,
        max_alert_level: 2,
      });
      expect(b.scores.map((s) => [s.ts.getTime(), s.score])).toEqual([
        [at(60), 99],
        [at(90), 95],
      ]);
      expect(b.face).toHaveLength(2);
      expect(b.alertEvents).toHaveLength(2);
      expect(b.alerts).toMatchObject([{ alert_id: ALERT, level: 2, escalations: 3, status: 'active' }]);
      expect(b.report).toMatchObject({ tenant_id: B, driver_id: 'drv-b', score_max: 99, alert_count: 1 });
    });

    it("keep each tenant's Redis latest score apart under the same session id", async () => {
      const a = await json(`/v1/sessions/${SHARED}`, keys.a);
      const b = await json(`/v1/sessions/${SHARED}`, keys.b);
      expect(a.latest).toMatchObject({ source: 'redis', ts: iso(120), score: 70, level: 1 });
      expect(b.latest).toMatchObject({ source: 'redis', ts: iso(90), score: 95, level: 2 });
    });
  });

  describe("another tenant's session id is a 404 problem+json, never data", () => {
    const routes = [
      `/v1/sessions/${A_ONLY}`,
      `/v1/sessions/${A_ONLY}/scores`,
      `/v1/sessions/${A_ONLY}/scores?bucket=1m`,
      `/v1/sessions/${A_ONLY}/alerts`,
      `/v1/sessions/${A_ONLY}/export?stream=scores&format=ndjson`,
      `/v1/sessions/${A_ONLY}/export?stream=face&format=csv`,
      `/v1/sessions/${A_ONLY}/playback`,
      `/v1/sessions/${A_ONLY}/live`,
    ];
    it.each(routes)("%s with tenant B's key", async (path) => {
      const r = await get(path, keys.b);
      expect(r.status).toBe(404);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.text).not.toMatch(/drv-a|fleet-a|"score"/);
    });

    it.each(routes.filter((p) => !p.endsWith('/live')))('%s answers tenant A itself', async (path) => {
      expect((await get(path, keys.a)).status).toBe(200);
    });

    it("acknowledging tenant A's alert with tenant B's key", async () => {
      const res = await fetch(`${url}/v1/alerts/al-a-only/ack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.b}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });
  });

  describe('under a session id both tenants use, each key reads its own tenant’s session', () => {
    it('session detail and list', async () => {
      expect(await json(`/v1/sessions/${SHARED}`, keys.a)).toMatchObject({
        tenant_id: A,
        driver_id: 'drv-a',
        status: 'ended',
        max_score: 70,
        alert_count: 1,
        telemetry: { face: { frames: 3 } },
        scores: { count: 2 },
      });
      expect(await json(`/v1/sessions/${SHARED}`, keys.b)).toMatchObject({
        tenant_id: B,
        driver_id: 'drv-b',
        status: 'active',
        max_score: 99,
        alert_count: 1,
        telemetry: { face: { frames: 2 } },
        scores: { count: 2 },
      });
      const list = (await json('/v1/sessions', keys.b)).sessions as Record<string, unknown>[];
      expect(list.map((s) => [s.session_id, s.tenant_id, s.driver_id])).toEqual([[SHARED, B, 'drv-b']]);
    });

    it('scores, raw and bucketed', async () => {
      const raw = async (key: string) =>
        ((await json(`/v1/sessions/${SHARED}/scores`, key)).scores as { ts: string; score: number }[]).map((s) => [
          s.ts,
          s.score,
        ]);
      expect(await raw(keys.a)).toEqual([
        [iso(60), 20],
        [iso(120), 70],
      ]);
      expect(await raw(keys.b)).toEqual([
        [iso(60), 99],
        [iso(90), 95],
      ]);
      const minute = (await json(`/v1/sessions/${SHARED}/scores?bucket=1m`, keys.a)).scores as Record<
        string,
        unknown
      >[];
      expect(minute.map((m) => [m.bucket_start, m.score_max, m.count])).toEqual([
        [iso(60), 20, 1],
        [iso(120), 70, 1],
      ]);
    });

    it('alerts and acknowledgement', async () => {
      const alertsOf = async (key: string) =>
        ((await json(`/v1/sessions/${SHARED}/alerts`, key)).alerts as Record<string, unknown>[]).map((x) => [
          x.alert_id,
          x.level,
          x.escalations,
          x.status,
        ]);
      expect(await alertsOf(keys.a)).toEqual([[ALERT, 1, 0, 'cleared']]);
      expect(await alertsOf(keys.b)).toEqual([[ALERT, 2, 3, 'active']]);
      const ack = (key: string) =>
        fetch(`${url}/v1/alerts/${ALERT}/ack`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: '{}',
        });
      // A's alert of that id is cleared: 409. B's is active: found and acknowledgeable (this API has no
      // Kafka producer, so the append itself answers 503, neither 404 nor A's 409).
      expect((await ack(keys.a)).status).toBe(409);
      expect((await ack(keys.b)).status).toBe(503);
    });

    it('export', async () => {
      const lines = async (key: string) =>
        (await get(`/v1/sessions/${SHARED}/export?stream=scores&format=ndjson`, key)).text
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { score: number }).score);
      expect(await lines(keys.a)).toEqual([20, 70]);
      expect(await lines(keys.b)).toEqual([99, 95]);
    });

    it("playback replays only tenant A's scores and alert events", async () => {
      const events = (await playback(SHARED, keys.a)).filter((e) => e.event === 'score' || e.event === 'alert');
      expect(events.map((e) => [e.event, e.data.ts, e.data.score ?? e.data.reason])).toEqual([
        ['score', iso(60), 20],
        ['score', iso(120), 70],
        ['alert', iso(120), 70],
        ['alert', iso(300), 'session_ended'],
      ]);
      // B's session of that id has not ended: B is told so, about B's own session.
      expect((await get(`/v1/sessions/${SHARED}/playback`, keys.b)).status).toBe(400);
    });

    it('session reports', async () => {
      const reportsOf = async (key: string) =>
        ((await json('/v1/reports/sessions?days=1', key)).reports as Record<string, unknown>[])
          .map((r) => [r.session_id, r.driver_id, r.score_max])
          .sort();
      expect(await reportsOf(keys.a)).toEqual([
        [A_ONLY, 'drv-a2', 33],
        [SHARED, 'drv-a', 70],
      ]);
      expect(await reportsOf(keys.b)).toEqual([[SHARED, 'drv-b', 99]]);
    });

    it('live feed: each client gets its own tenant’s entries only', async () => {
      const open = async (key: string) => {
        const c = await openSse(`${url}/v1/sessions/${SHARED}/live`, { authorization: `Bearer ${key}` });
        clients.push(c);
        expect(c.status).toBe(200);
        return c;
      };
      const a = await open(keys.a);
      const b = await open(keys.b);
      await eventually(
        async () => hub.streamCount,
        (n) => n === 2, // two streams: one per tenant, though one session id
      );
      await projectAll({
        sessions: [],
        face: [],
        alerts: [],
        scores: [score(A, SHARED, 180, 33, 0), score(B, SHARED, 180, 44, 0)],
      });
      const scoreOf = (c: SseClient) => c.messages.map((m) => [m.event, (JSON.parse(m.data) as FatigueScored).score]);
      await a.waitFor(1);
      await b.waitFor(1);
      await new Promise((r) => setTimeout(r, 500)); // nothing else arrives
      expect(scoreOf(a)).toEqual([['score', 33]]);
      expect(scoreOf(b)).toEqual([['score', 44]]);
    });
  });
});
