import type { Pool } from 'pg';
import { eventually, testConfig } from '../test/support/env';
import { pipelineFixture, projectionRunner, type PipelineFixture } from '../test/support/pipeline';
import type { Publisher } from '../producers/publisher';
import { sessionEvents } from '../producers/simulator/session';
import { alertIdOf, uuidFrom } from '../processors/fatigue/ids';
import type { TopicKey } from '../schemas/catalogue';
import type { AlertEvent, AlertEventKind, FaceFrame, GameEvent, SessionEvent, VehicleFrame } from '../schemas/types';
import { buildScore } from '../test/support/build';

/**
 * Every read model from its topic to its tables: a simulated session's telemetry (face, vehicle,
 * game), hand-written scores and alerts (with a late score and a producer-retry duplicate of each),
 * then exact rows; a second set of runners under a new consumer group applies nothing, and a replay
 * with the checkpoints gone changes nothing either (ON CONFLICT and the guards, the second line).
 */
describe('read models (Kafka → PostgreSQL)', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let pool: Pool;
  let publisher: Publisher;

  const models = ['sessions', 'face', 'vehicle', 'game', 'scores', 'alerts'];
  const topicsOf: TopicKey[] = ['sessions', 'face', 'vehicle', 'game', 'scores', 'alerts'];
  const startTs = Date.UTC(2026, 0, 1, 8);
  const plan = {
    seed: 7,
    index: 0,
    tenantId: 'tenant-a',
    startTs,
    durationMs: 30_000,
    profile: 'drowsy' as const,
    modalities: ['face', 'vehicle', 'game'] as const,
  };
  const simulated = [...sessionEvents(plan)];
  const of = <T>(topic: TopicKey) => simulated.filter((e) => e.topic === topic).map((e) => e.event as T);
  const sessions = of<SessionEvent>('sessions');
  const face = of<FaceFrame>('face');
  const vehicle = of<VehicleFrame>('vehicle');
  const game = of<GameEvent>('game');
  const sessionId = sessions[0]!.session_id;
  const at = (s: number) => startTs + s * 1000;

  // Scores: windows ending at +10 s .. +25 s, then a late one (+5 s) after them: it is stored, raises
  // nothing it should not, and does not become the session's last score. Values exact in float32.
  // Every column filled (no null but eeg), so the row check below sees each one mapped.
  const score = (endS: number, value: number, level: number) =>
    buildScore({
      tenant_id: plan.tenantId,
      session_id: sessionId,
      ts: at(endS),
      score: value,
      level,
      components: { ocular: 0.75, driving: 0.5, eeg: null, reaction: 0.25, yawn: 0 },
      features: { perclos: 0.125, long_blink_share: 0.5, sdlp_m: 0.25, lane_departures: 1, lapses: 2 },
    });
  const scores = [score(10, 42.5, 0), score(15, 71.25, 2), score(20, 60.5, 2), score(25, 55, 1), score(5, 80, 2)];

  // Alerts: a microsleep raised, escalated, acknowledged and cleared; a drowsy alert left active.
  const microsleep = alertIdOf('fatigue-v1', sessionId, 'microsleep', at(12));
  const drowsy = alertIdOf('fatigue-v1', sessionId, 'drowsy', at(15));
  const alert = (s: number, event: AlertEventKind): AlertEvent => ({
    event_id: uuidFrom('spec', 'alert', event.alert_id, event.type),
    tenant_id: plan.tenantId,
    session_id: sessionId,
    ts: at(s),
    event,
  });
  const alerts = [
    alert(12, { type: 'AlertRaised', alert_id: microsleep, level: 2, reason: 'microsleep', score: null }),
    alert(15, { type: 'AlertRaised', alert_id: drowsy, level: 1, reason: 'drowsy', score: 71.25 }),
    alert(42, { type: 'AlertEscalated', alert_id: microsleep, level: 2, count: 1 }),
    alert(44, { type: 'AlertAcknowledged', alert_id: microsleep, acknowledged_by: 'ops@fleet' }),
    alert(72, { type: 'AlertCleared', alert_id: microsleep, reason: 'recovered' }),
  ];

  const runnersOf = (groupPrefix: string) => models.map((m) => projectionRunner(fx, m, groupPrefix));

  /** Runs every model until its checkpoints reach the end of its topic, and `dwellMs` more. */
  async function runToEnd(groupPrefix: string, dwellMs = 0): Promise<number> {
    const runners = runnersOf(groupPrefix);
    await Promise.all(runners.map((r) => r.start()));
    const ends = new Map<string, Map<number, string>>();
    for (const k of topicsOf) {
      const offsets = await fx.admin.fetchTopicOffsets(fx.topics[k]);
      ends.set(fx.topics[k], new Map(offsets.filter((o) => o.high !== '0').map((o) => [o.partition, o.high])));
    }
    const caughtUp = async () => {
      const { rows } = await pool.query<{ projection: string; topic: string; partition: number; next_offset: string }>(
        'SELECT projection, topic, partition, next_offset FROM projection_checkpoints',
      );
      return models.every((m, i) =>
        [...ends.get(fx.topics[topicsOf[i]!])!].every(([p, high]) =>
          rows.some(
            (r) =>
              r.projection === m && r.topic === fx.topics[topicsOf[i]!] && r.partition === p && r.next_offset === high,
          ),
        ),
      );
    };
    const done = await eventually(caughtUp, (v) => v, 60_000);
    await new Promise((r) => setTimeout(r, dwellMs));
    await Promise.all(runners.map((r) => r.stop()));
    expect(done).toBe(true);
    return runners.reduce((n, r) => n + r.applied, 0);
  }

  /** Every read-model row, without updated_at (the wall-clock time of the last write). */
  async function snapshot(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const t of [
      'sessions',
      'face_frames',
      'vehicle_frames',
      'game_events',
      'fatigue_scores',
      'alert_events',
      'alerts',
    ]) {
      const { rows } = await pool.query<{ r: string }>(
        `SELECT (to_jsonb(t) - 'updated_at')::text AS r FROM ${t} t ORDER BY 1`,
      );
      out[t] = rows.map((x) => x.r);
    }
    return out;
  }

  beforeAll(async () => {
    fx = await pipelineFixture(config, { poolMax: 8 });
    ({ pool, publisher } = fx);
  });
  afterAll(() => fx?.close());

  it('projects every stream: each event once, duplicates in the topic included', async () => {
    expect(game.length).toBeGreaterThan(0);
    await publisher.publish('sessions', sessions);
    await publisher.publish('face', face);
    await publisher.publish('vehicle', vehicle);
    await publisher.publish('game', game);
    await publisher.publish('scores', scores);
    await publisher.publish('alerts', alerts);
    // A producer retry that wrote twice: the same events again, later in the topics.
    await publisher.publish('face', face.slice(0, 10));
    await publisher.publish('scores', [scores[1]!]);
    await publisher.publish('alerts', [alerts[2]!]);

    const applied = await runToEnd(config.topicPrefix);
    expect(applied).toBe(
      sessions.length + face.length + vehicle.length + game.length + scores.length + alerts.length + 12,
    );

    const counts = await pool.query(
      `SELECT (SELECT count(DISTINCT event_id)::int FROM face_frames) AS face,
              (SELECT count(*)::int FROM face_frames) AS face_rows,
              (SELECT count(*)::int FROM vehicle_frames) AS vehicle,
              (SELECT count(*)::int FROM game_events) AS game,
              (SELECT count(*)::int FROM fatigue_scores) AS scores,
              (SELECT count(*)::int FROM alert_events) AS alert_events`,
    );
    expect(counts.rows[0]).toEqual({
      face: face.length,
      face_rows: face.length,
      vehicle: vehicle.length,
      game: game.length,
      scores: scores.length,
      alert_events: alerts.length,
    });
  });

  it('stores telemetry field by field (float columns exact to the Avro float)', async () => {
    const f = face.find((e) => e.face_detected)!;
    const faceRow = await pool.query(
      `SELECT event_id, ts, tenant_id, session_id, device_id, seq::int, face_detected, eye_closure::float8,
              mouth_open::float8, head_pitch_deg::float8, head_yaw_deg::float8, head_roll_deg::float8
       FROM face_frames WHERE event_id = $1`,
      [f.event_id],
    );
    const f32 = (x: number | null) => (x === null ? null : Math.fround(x));
    expect(faceRow.rows[0]).toEqual({
      event_id: f.event_id,
      ts: new Date(f.ts),
      tenant_id: f.tenant_id,
      session_id: f.session_id,
      device_id: f.device_id,
      seq: f.seq,
      face_detected: true,
      eye_closure: f32(f.eye_closure),
      mouth_open: f32(f.mouth_open),
      head_pitch_deg: f32(f.head_pitch_deg),
      head_yaw_deg: f32(f.head_yaw_deg),
      head_roll_deg: f32(f.head_roll_deg),
    });

    const v = vehicle[3]!;
    const vehicleRow = await pool.query(
      `SELECT event_id, ts, device_id, seq::int, speed_kmh::float8, lane_offset_m::float8, steering_deg::float8
       FROM vehicle_frames WHERE event_id = $1`,
      [v.event_id],
    );
    expect(vehicleRow.rows[0]).toEqual({
      event_id: v.event_id,
      ts: new Date(v.ts),
      device_id: v.device_id,
      seq: v.seq,
      speed_kmh: Math.fround(v.speed_kmh),
      lane_offset_m: f32(v.lane_offset_m),
      steering_deg: Math.fround(v.steering_deg),
    });

    const kinds = await pool.query<{ kind: string; n: number }>(
      'SELECT kind, count(*)::int AS n FROM game_events GROUP BY kind ORDER BY kind',
    );
    const expected = new Map<string, number>();
    for (const g of game) expected.set(g.event.type, (expected.get(g.event.type) ?? 0) + 1);
    expect(Object.fromEntries(kinds.rows.map((r) => [r.kind, r.n]))).toEqual(Object.fromEntries(expected));
    const g = game[0]!;
    const gameRow = await pool.query('SELECT kind, details FROM game_events WHERE event_id = $1', [g.event_id]);
    const { type, ...details } = g.event;
    expect(gameRow.rows[0]).toEqual({ kind: type, details: JSON.parse(JSON.stringify(details)) });
  });

  it('stores the scores and keeps the session’s last score at the newest window despite the late one', async () => {
    const rows = await pool.query(
      `SELECT session_id, ts, event_id, tenant_id, window_start_ts, score, level, ocular, driving, eeg, reaction, yawn,
              features, baseline_ready, model_version FROM fatigue_scores ORDER BY ts`,
    );
    expect(rows.rows).toEqual(
      [...scores]
        .sort((a, b) => a.ts - b.ts)
        .map((s) => ({
          session_id: s.session_id,
          ts: new Date(s.ts),
          event_id: s.event_id,
          tenant_id: s.tenant_id,
          window_start_ts: new Date(s.window_start_ts),
          score: s.score,
          level: s.level,
          ...s.components,
          features: s.features,
          baseline_ready: false,
          model_version: 'fatigue-v1',
        })),
    );
  });

  it('folds the alert events into each alert’s current state', async () => {
    const rows = await pool.query(
      `SELECT alert_id, tenant_id, session_id, level, reason, score, status, raised_at, escalations, acknowledged_at,
              acknowledged_by, cleared_at, clear_reason, last_event_ts FROM alerts ORDER BY raised_at`,
    );
    expect(rows.rows).toEqual([
      {
        alert_id: microsleep,
        tenant_id: plan.tenantId,
        session_id: sessionId,
        level: 2,
        reason: 'microsleep',
        score: null,
        status: 'cleared',
        raised_at: new Date(at(12)),
        escalations: 1,
        acknowledged_at: new Date(at(44)),
        acknowledged_by: 'ops@fleet',
        cleared_at: new Date(at(72)),
        clear_reason: 'recovered',
        last_event_ts: new Date(at(72)),
      },
      {
        alert_id: drowsy,
        tenant_id: plan.tenantId,
        session_id: sessionId,
        level: 1,
        reason: 'drowsy',
        score: 71.25,
        status: 'active',
        raised_at: new Date(at(15)),
        escalations: 0,
        acknowledged_at: null,
        acknowledged_by: null,
        cleared_at: null,
        clear_reason: null,
        last_event_ts: new Date(at(15)),
      },
    ]);
  });

  it('keeps the session’s status: counts, last and max score and level, alert counts, last seen', async () => {
    const row = await pool.query(
      `SELECT status, driver_id, face_frame_count::int AS face, vehicle_frame_count::int AS vehicle,
              game_event_count::int AS game, eeg_frame_count::int AS eeg, first_ts, last_ts,
              score_count::int AS scores, last_score, last_level, last_score_at, max_score, max_level,
              alert_count, open_alert_count, max_alert_level, last_alert_at, last_seen_at
       FROM sessions WHERE session_id = $1`,
      [sessionId],
    );
    const telemetry = [...face, ...vehicle, ...game].map((e) => e.ts);
    const lastSeen = Math.max(...telemetry, ...sessions.map((e) => e.ts), at(72));
    expect(row.rows[0]).toEqual({
      status: 'ended',
      driver_id: 'driver-0',
      face: face.length,
      vehicle: vehicle.length,
      game: game.length,
      eeg: 0,
      first_ts: null, // the EEG span: no EEG in this session
      last_ts: null,
      scores: scores.length,
      last_score: 55,
      last_level: 1,
      last_score_at: new Date(at(25)),
      max_score: 80,
      max_level: 2,
      alert_count: 2,
      open_alert_count: 1,
      max_alert_level: 2,
      last_alert_at: new Date(at(72)),
      last_seen_at: new Date(lastSeen),
    });
  });

  it('resumes from its own checkpoints: runners under a new consumer group apply nothing', async () => {
    const before = await snapshot();
    expect(await runToEnd(`${config.topicPrefix}-again`, 4_000)).toBe(0);
    expect(await snapshot()).toEqual(before);
  });

  it('changes nothing when replayed without checkpoints (ON CONFLICT and the ts guards)', async () => {
    const before = await snapshot();
    await pool.query('DELETE FROM projection_checkpoints');
    expect(await runToEnd(`${config.topicPrefix}-replay`)).toBeGreaterThan(0);
    expect(await snapshot()).toEqual(before);
  });
});
