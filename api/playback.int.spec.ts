import { randomUUID } from 'node:crypto';
import { apiFixture, type ApiFixture } from '../test/support/api';
import { openSse } from '../test/support/sse';

/**
 * `GET /v1/sessions/:id/playback` against real PostgreSQL: an ended session's scores, alert events
 * and per-minute telemetry summaries, in event-time order, paced by event time / speed.
 */
const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);
const at = (s: number) => new Date(T0 + s * 1000);

describe('session playback over SSE (real PostgreSQL)', () => {
  let fx: ApiFixture;
  const keys = {} as Record<'a' | 'b', string>;

  beforeAll(async () => {
    fx = await apiFixture();
    keys.a = await fx.key('fleet-a', 'reader');
    keys.b = await fx.key('fleet-b', 'reader');
    await fx.pool.query(
      `INSERT INTO sessions (session_id, tenant_id, status, started_at, ended_at, end_reason) VALUES
         ('s-ended', 'fleet-a', 'ended', $1, $2, 'completed'),
         ('s-live', 'fleet-a', 'active', $1, NULL, NULL)`,
      [at(0), at(96)],
    );
    // Scores every 32 s of event time (1 s apart at 32x), an alert raised with the second score.
    for (const [s, score, level] of [
      [32, 41.5, 0],
      [64, 72.25, 2],
      [96, 30, 0],
    ] as const) {
      await fx.pool.query(
        `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, ocular, features, baseline_ready, model_version)
         VALUES ('s-ended', $1, $2, 'fleet-a', $3, $4, $5, 0.5, '{}', false, 'fatigue-v1')`,
        [at(s), randomUUID(), at(s - 60), score, level],
      );
    }
    await fx.pool.query(
      `INSERT INTO alert_events (event_id, ts, tenant_id, session_id, alert_id, type, level, reason, score) VALUES
         ($1, $2, 'fleet-a', 's-ended', 'al-1', 'AlertRaised', 2, 'drowsy', 72.25),
         ($3, $4, 'fleet-a', 's-ended', 'al-1', 'AlertCleared', NULL, 'session_ended', NULL)`,
      [randomUUID(), at(64), randomUUID(), at(96)],
    );
    // Face frames in minute 0 (two, one closed eye) and minute 1 (one).
    for (const [s, closure] of [
      [10, 0.9],
      [20, 0.1],
      [70, 0.2],
    ] as const) {
      await fx.pool.query(
        `INSERT INTO face_frames (event_id, ts, tenant_id, session_id, device_id, seq, face_detected, eye_closure)
         VALUES ($1, $2, 'fleet-a', 's-ended', 'cam-1', $3, true, $4)`,
        [randomUUID(), at(s), s, closure],
      );
    }
  });
  afterAll(() => fx?.close());

  it('replays scores, alerts and per-minute summaries in event-time order, paced at 32x, then ends', async () => {
    const c = await openSse(`${fx.url}/v1/sessions/s-ended/playback?speed=32`, { authorization: `Bearer ${keys.a}` });
    expect(c.status).toBe(200);
    expect(c.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await c.ended;
    const ms = c.messages;
    expect(ms.map((m) => [m.id, m.event])).toEqual([
      ['0', 'score'],
      ['1', 'telemetry'],
      ['2', 'score'],
      ['3', 'alert'],
      ['4', 'telemetry'],
      ['5', 'score'],
      ['6', 'alert'],
      [undefined, 'end'],
    ]);
    const data = ms.map((m) => JSON.parse(m.data));
    expect(data[0]).toMatchObject({ ts: at(32).toISOString(), score: 41.5, level: 0, model_version: 'fatigue-v1' });
    expect(data[1]).toEqual({
      ts: at(60).toISOString(),
      minute: at(0).toISOString(),
      eeg_frames: 0,
      face_frames: 2,
      eye_closure_avg: expect.closeTo(0.5, 5),
      perclos: 0.5,
      face_lost_frames: 0,
    });
    expect(data[3]).toMatchObject({ alert_id: 'al-1', type: 'AlertRaised', level: 2, reason: 'drowsy' });
    // The last minute's summary is due when the session ended (96 s), before the score at 96 s.
    expect(data[4]).toMatchObject({ ts: at(96).toISOString(), minute: at(60).toISOString(), face_frames: 1 });
    expect(data[6]).toMatchObject({ type: 'AlertCleared', reason: 'session_ended' });
    expect(data[7]).toEqual({ count: 7 });
    // Pacing: event time 32 s → 60 s → 64 s → 96 s after the first score is 0.875, 1 and 2 s at 32x.
    const t0 = ms[0]!.at;
    const offsets = ms.slice(0, 7).map((m) => m.at - t0);
    const due = [0, 875, 1000, 1000, 2000, 2000, 2000];
    offsets.forEach((o, i) => {
      // Arrival jitter of the first message (measured by the client) can shift the rest by a few tens of ms.
      expect(o).toBeGreaterThanOrEqual(due[i]! - 100);
      expect(o).toBeLessThan(due[i]! + 400);
    });
  });

  it('refuses a live session and a speed outside 1-32 with 400, another tenant’s session with 404', async () => {
    const get = (path: string, key = keys.a) =>
      fetch(`${fx.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const live = await get('/v1/sessions/s-live/playback?speed=4');
    expect(live.status).toBe(400);
    expect(((await live.json()) as { detail: string }).detail).toMatch(/has not ended/);
    for (const speed of ['0', '33', 'fast', '1.5']) {
      const res = await get(`/v1/sessions/s-ended/playback?speed=${speed}`);
      expect({ speed, status: res.status }).toEqual({ speed, status: 400 });
    }
    expect((await get('/v1/sessions/s-ended/playback', keys.b)).status).toBe(404);
    expect((await get('/v1/sessions/nope/playback')).status).toBe(404);
  });
});
