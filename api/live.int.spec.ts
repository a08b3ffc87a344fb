import { apiFixture, type ApiFixture } from '../test/support/api';
import { openSse, type SseClient } from '../test/support/sse';
import { eventually, testLogger } from '../test/support/env';
import { redisKeys } from '../core/redis-keys';
import { FeedHub } from './feed-hub';
import { createRedis } from '../core/redis';

/**
 * `GET /v1/sessions/:id/live` against real Redis and PostgreSQL: entries appended to the session's
 * feed stream (as the Redis projection writes them) reach connected clients in order, once; a
 * reconnect with Last-Event-ID receives exactly what was missed; one hub reads for all clients.
 */
describe('live feed over SSE (real Redis, PostgreSQL)', () => {
  let fx: ApiFixture;
  let url: string;
  let hub: FeedHub;
  const keys = {} as Record<'a' | 'b', string>;
  const SESSION = 'sess-live-1';
  const clients: SseClient[] = [];
  let seq = 0;

  /** Appends one entry to the feed stream, as the Redis projection's `feed` script does. */
  async function append(
    kind: 'score' | 'alert' | 'session',
    data: Record<string, unknown>,
    session = SESSION,
    tenant = 'fleet-a',
  ) {
    seq += 1;
    const id = await fx.redis.xadd(
      redisKeys(fx.config.topicPrefix).feed(tenant, session),
      '*',
      'kind',
      kind,
      'ts',
      String(1_772_352_000_000 + seq * 5_000),
      'event_id',
      `e-${seq}`,
      'data',
      JSON.stringify({ seq, ...data }),
    );
    return { id: id!, event: kind, data: JSON.stringify({ seq, ...data }) };
  }
  const open = async (path: string, key: string, headers: Record<string, string> = {}) => {
    const c = await openSse(`${url}${path}`, { authorization: `Bearer ${key}`, ...headers });
    clients.push(c);
    return c;
  };
  /** `vigil_api_sse_clients{stream="live"}` from /metrics. */
  const sseGauge = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = /^vigil_api_sse_clients\{[^}]*stream="live"[^}]*\} (\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const strip = (ms: { id?: string; event?: string; data: string }[]) =>
    ms.map(({ id, event, data }) => ({ id, event, data }));

  beforeAll(async () => {
    fx = await apiFixture();
    keys.a = await fx.key('fleet-a', 'reader');
    keys.b = await fx.key('fleet-b', 'reader');
    await fx.pool.query(
      `INSERT INTO sessions (session_id, tenant_id, status) VALUES ($1, 'fleet-a', 'active'), ('sess-live-2', 'fleet-a', 'active')`,
      [SESSION],
    );
    hub = new FeedHub(fx.redis, testLogger(), { blockMs: 500, count: 100 });
    url = await fx.start({ live: { hub, sse: { heartbeatMs: 300, maxBufferedBytes: 1024 * 1024 } } });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await hub?.close();
    await fx?.close();
  });

  it('sends new scores and alerts in order as id/event/data, with heartbeats, and nothing from before it connected', async () => {
    await append('score', { score: 10 }); // before the client: not sent
    const c = await open(`/v1/sessions/${SESSION}/live`, keys.a);
    expect(c.status).toBe(200);
    expect(c.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(c.headers.get('x-request-id')).toBeTruthy();
    await eventually(
      async () => hub.streamCount,
      (n) => n === 1,
    );
    const sent = [
      await append('score', { score: 20 }),
      await append('alert', { type: 'AlertRaised' }),
      await append('score', { score: 30 }),
    ];
    expect(strip(await c.waitFor(3))).toEqual(sent);
    await eventually(
      async () => c.comments.length,
      (n) => n > 0,
      5_000,
    );
    expect(c.comments).toContain('heartbeat');
    c.close();
    await eventually(
      async () => hub.streamCount,
      (n) => n === 0,
    );
  });

  it('resumes after Last-Event-ID with exactly the missed entries, then follows, without duplicates', async () => {
    const first = await open(`/v1/sessions/${SESSION}/live`, keys.a);
    await eventually(
      async () => hub.streamCount,
      (n) => n === 1,
    );
    const a = [await append('score', { score: 40 }), await append('score', { score: 41 })];
    expect(strip(await first.waitFor(2))).toEqual(a);
    first.close(); // the client goes away
    await first.ended;
    const missed = [
      await append('alert', { type: 'AlertEscalated' }),
      await append('score', { score: 42 }),
      await append('score', { score: 43 }),
    ];
    const header = await open(`/v1/sessions/${SESSION}/live`, keys.a, { 'last-event-id': a[1]!.id });
    const query = await open(`/v1/sessions/${SESSION}/live?last_event_id=${a[1]!.id}`, keys.a);
    expect(strip(await header.waitFor(3))).toEqual(missed);
    expect(strip(await query.waitFor(3))).toEqual(missed);
    const after = await append('score', { score: 44 });
    expect(strip(await header.waitFor(4))).toEqual([...missed, after]);
    expect(strip(await query.waitFor(4))).toEqual([...missed, after]);
    // No duplicate arrives later.
    await new Promise((r) => setTimeout(r, 700));
    expect(header.messages).toHaveLength(4);
    // Two clients of one session share one stream read by the hub.
    expect(hub.streamCount).toBe(1);
    header.close();
    query.close();
  });

  it('answers 404 for another tenant’s session or an unknown one, 400 for a malformed Last-Event-ID, 503 without Redis', async () => {
    const other = await fetch(`${url}/v1/sessions/${SESSION}/live`, { headers: { authorization: `Bearer ${keys.b}` } });
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const unknown = await fetch(`${url}/v1/sessions/no-such/live`, { headers: { authorization: `Bearer ${keys.a}` } });
    expect(unknown.status).toBe(404);
    const bad = await fetch(`${url}/v1/sessions/${SESSION}/live`, {
      headers: { authorization: `Bearer ${keys.a}`, 'last-event-id': "1' OR 1=1" },
    });
    expect(bad.status).toBe(400);
    const noKey = await fetch(`${url}/v1/sessions/${SESSION}/live`);
    expect(noKey.status).toBe(401);
    // Redis down: the feed cannot be followed, which is a 503 before any stream opens.
    const deadRedis = createRedis('redis://127.0.0.1:1/0');
    deadRedis.on('error', () => {});
    try {
      const down = await fx.start({ redis: deadRedis, live: { hub: new FeedHub(deadRedis, testLogger()) } });
      const res = await fetch(`${down}/v1/sessions/${SESSION}/live`, {
        headers: { authorization: `Bearer ${keys.a}` },
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    } finally {
      deadRedis.disconnect();
    }
  });

  it('drops a client that does not read instead of buffering for it, and keeps serving the others', async () => {
    const other = await open(`/v1/sessions/sess-live-2/live`, keys.a);
    // A raw socket that never reads: the server's buffer for it fills up.
    const net = await import('node:net');
    const { port } = new URL(url);
    const sock = net.connect(Number(port), '127.0.0.1');
    sock.pause();
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      `GET /v1/sessions/sess-live-2/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.a}\r\nConnection: keep-alive\r\n\r\n`,
    );
    await eventually(
      async () => hub.streamCount,
      (n) => n === 1,
    );
    const big = 'x'.repeat(4 * 1024);
    let sent = 0;
    let live = await eventually(sseGauge, (n) => n === 2);
    expect(live).toBe(2);
    while (sent < 4_000 && live === 2) {
      await append('score', { pad: big }, 'sess-live-2');
      sent++;
      if (sent % 50 === 0) live = await sseGauge();
    }
    // The server ended the silent client (the gauge counts only the reading one), well before 4,000 x 4 KiB.
    expect(await eventually(sseGauge, (n) => n === 1, 5_000)).toBe(1);
    expect(sent).toBeLessThan(4_000);
    // The reading client got every entry, in order.
    const got = await other.waitFor(sent, 30_000);
    expect(got.map((m) => JSON.parse(m.data).seq)).toEqual([...Array(sent).keys()].map((i) => seq - sent + 1 + i));
    sock.destroy();
    other.close();
  });

  it('counts connected SSE clients in /metrics', async () => {
    const gauge = sseGauge;
    await eventually(gauge, (n) => n === 0);
    const c1 = await open(`/v1/sessions/${SESSION}/live`, keys.a);
    const c2 = await open(`/v1/sessions/${SESSION}/live`, keys.a);
    expect(await eventually(gauge, (n) => n === 2)).toBe(2);
    c1.close();
    c2.close();
    expect(await eventually(gauge, (n) => n === 0)).toBe(0);
  });
});
