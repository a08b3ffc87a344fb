import type { Pool } from '../core/db';

/**
 * Playback of an ended session (`GET /v1/sessions/:id/playback`): its scores, alert events and a
 * per-minute telemetry summary from PostgreSQL, merged into one timeline in event-time order and sent
 * paced by event time divided by the speed (1-32x). Pure timeline and pacing here; SQL in
 * `loadPlayback`, the route in routes/playback.ts.
 */
export interface PlaybackEvent {
  kind: 'score' | 'alert' | 'telemetry';
  /** Event time, ms since the epoch. */
  ts: number;
  data: Record<string, unknown>;
}

/** Order of kinds at the same ts: a summary closes its minute first, then the score, then alerts it caused. */
const KIND_ORDER: Record<PlaybackEvent['kind'], number> = { telemetry: 0, score: 1, alert: 2 };

/** One timeline, oldest first; ties keep the order of kinds above, then the input order (stable sort). */
export function playbackTimeline(...parts: PlaybackEvent[][]): PlaybackEvent[] {
  return parts.flat().sort((a, b) => a.ts - b.ts || KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
}

/**
 * When (ms after the start of playback) each event is due: its event time after the first event's,
 * divided by the speed.
 */
export function dueTimes(timeline: readonly PlaybackEvent[], speed: number): number[] {
  const t0 = timeline[0]?.ts ?? 0;
  return timeline.map((e) => (e.ts - t0) / speed);
}

/**
 * Sends each event when it is due (`emit` returns false to stop: the client left). Waits against the
 * wall clock from the start, so timer drift does not accumulate. `from` skips already-sent events (a
 * resume) and starts the clock at the first one sent.
 */
export async function pace(
  timeline: readonly PlaybackEvent[],
  speed: number,
  emit: (e: PlaybackEvent, index: number) => boolean,
  from = 0,
  clock: { now: () => number; sleep: (ms: number) => Promise<void> } = {
    now: () => performance.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  },
): Promise<number> {
  const due = dueTimes(timeline, speed);
  const start = clock.now();
  const offset = due[from] ?? 0;
  let sent = 0;
  for (let i = from; i < timeline.length; i++) {
    const wait = due[i]! - offset - (clock.now() - start);
    if (wait > 0) await clock.sleep(wait);
    if (!emit(timeline[i]!, i)) return sent;
    sent++;
  }
  return sent;
}

const num = (v: string | number | null): number | null => (v === null ? null : Number(v));

/**
 * The tenant's session's timeline from the read models (scores, alert events, telemetry per minute).
 * Every query names the pair (tenant_id, session_id): rows another tenant wrote under the same
 * session id are not this session's.
 */
export async function loadPlayback(
  pool: Pool,
  tenantId: string,
  sessionId: string,
  endedAt: Date,
): Promise<PlaybackEvent[]> {
  const [scores, alerts, eeg, face, vehicle, game] = await Promise.all([
    pool.query(
      `SELECT ts, event_id, window_start_ts, score, level, ocular, driving, eeg, reaction, yawn, baseline_ready, model_version
         FROM fatigue_scores WHERE tenant_id = $1 AND session_id = $2 ORDER BY ts`,
      [tenantId, sessionId],
    ),
    pool.query(
      `SELECT ts, event_id, alert_id, type, level, reason, score, escalation, acknowledged_by
         FROM alert_events WHERE tenant_id = $1 AND session_id = $2 ORDER BY ts, event_id`,
      [tenantId, sessionId],
    ),
    pool.query(
      `SELECT date_trunc('minute', ts) AS minute, count(*) AS n FROM eeg_frames WHERE tenant_id = $1 AND session_id = $2 GROUP BY 1`,
      [tenantId, sessionId],
    ),
    pool.query(
      `SELECT date_trunc('minute', ts) AS minute, count(*) AS n, avg(eye_closure) AS eye_closure_avg,
              avg((eye_closure >= 0.8)::int) AS perclos, count(*) FILTER (WHERE NOT face_detected) AS face_lost
         FROM face_frames WHERE tenant_id = $1 AND session_id = $2 GROUP BY 1`,
      [tenantId, sessionId],
    ),
    pool.query(
      `SELECT date_trunc('minute', ts) AS minute, count(*) AS n, avg(speed_kmh) AS speed_kmh_avg,
              stddev_samp(lane_offset_m) AS lane_offset_sd
         FROM vehicle_frames WHERE tenant_id = $1 AND session_id = $2 GROUP BY 1`,
      [tenantId, sessionId],
    ),
    pool.query(
      `SELECT date_trunc('minute', ts) AS minute, count(*) AS n,
              count(*) FILTER (WHERE kind = 'LaneDeparture') AS lane_departures,
              count(*) FILTER (WHERE kind = 'StimulusMissed') AS stimuli_missed
         FROM game_events WHERE tenant_id = $1 AND session_id = $2 GROUP BY 1`,
      [tenantId, sessionId],
    ),
  ]);
  const minutes = new Map<number, Record<string, unknown>>();
  const at = (d: Date) => {
    let m = minutes.get(d.getTime());
    if (!m) minutes.set(d.getTime(), (m = { minute: d.toISOString(), eeg_frames: 0, face_frames: 0 }));
    return m;
  };
  for (const r of eeg.rows) at(r.minute).eeg_frames = Number(r.n);
  for (const r of face.rows)
    Object.assign(at(r.minute), {
      face_frames: Number(r.n),
      eye_closure_avg: num(r.eye_closure_avg),
      perclos: num(r.perclos),
      face_lost_frames: Number(r.face_lost),
    });
  for (const r of vehicle.rows)
    Object.assign(at(r.minute), {
      vehicle_frames: Number(r.n),
      speed_kmh_avg: num(r.speed_kmh_avg),
      lane_offset_sd_m: num(r.lane_offset_sd),
    });
  for (const r of game.rows)
    Object.assign(at(r.minute), {
      game_events: Number(r.n),
      lane_departures: Number(r.lane_departures),
      stimuli_missed: Number(r.stimuli_missed),
    });
  // A minute's summary is due when the minute is over (or the session ended, for the last one).
  const telemetry: PlaybackEvent[] = [...minutes.entries()].map(([start, data]) => ({
    kind: 'telemetry',
    ts: Math.min(start + 60_000, endedAt.getTime()),
    data,
  }));
  return playbackTimeline(
    scores.rows.map((r) => ({
      kind: 'score' as const,
      ts: r.ts.getTime(),
      data: {
        event_id: r.event_id,
        ts: r.ts.toISOString(),
        window_start_ts: r.window_start_ts.toISOString(),
        score: r.score,
        level: r.level,
        components: { ocular: r.ocular, driving: r.driving, eeg: r.eeg, reaction: r.reaction, yawn: r.yawn },
        baseline_ready: r.baseline_ready,
        model_version: r.model_version,
      },
    })),
    alerts.rows.map((r) => ({
      kind: 'alert' as const,
      ts: r.ts.getTime(),
      data: {
        event_id: r.event_id,
        ts: r.ts.toISOString(),
        alert_id: r.alert_id,
        type: r.type,
        level: r.level,
        reason: r.reason,
        score: r.score,
        escalation: r.escalation,
        acknowledged_by: r.acknowledged_by,
      },
    })),
    telemetry,
  ).map((e) => (e.kind === 'telemetry' ? { ...e, data: { ...e.data, ts: new Date(e.ts).toISOString() } } : e));
}
