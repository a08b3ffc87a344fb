import { fatigueV1 } from '../../processors/fatigue/config';

/**
 * The session report (issue 5, `session_reports` in migration 0004): a pure function of the session's
 * rows in PostgreSQL. Event time only: every duration and timestamp in the report comes from the rows;
 * the same rows always give the same report (the job adds `generated_at`, the one wall-clock field,
 * outside of it). Times are epoch milliseconds on the way in and ISO-8601 UTC in the document.
 */

export interface ReportSession {
  session_id: string;
  tenant_id: string;
  driver_id: string | null;
  vehicle_id: string | null;
  started_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
}

/** A `fatigue_scores` row: `ts` is the end of its window. */
export interface ReportScore {
  ts: number;
  score: number;
  level: number;
  model_version: string;
}

/** An `alerts` row (current state of one alert). */
export interface ReportAlert {
  alert_id: string;
  reason: string | null;
  level: number | null;
  status: string;
  raised_at: number | null;
  escalations: number;
  acknowledged_at: number | null;
  cleared_at: number | null;
  clear_reason: string | null;
}

/** Frames of one telemetry stream of the session, from its table. */
export interface StreamStats {
  frames: number;
  /** Distinct devices that sent frames. */
  devices: number;
  first_ts: number | null;
  last_ts: number | null;
  /** Largest time between two consecutive frames, ms (null with fewer than two frames). */
  max_gap_ms: number | null;
}

export type Modality = 'eeg' | 'face' | 'vehicle';

export interface ReportInput {
  session: ReportSession;
  scores: readonly ReportScore[];
  alerts: readonly ReportAlert[];
  telemetry: Record<Modality, StreamStats> & { game_events: number };
  /** Why the data may be incomplete (see `readiness.ts`); empty when the projections had caught up. */
  pending: readonly string[];
}

/**
 * Nominal frame rates per device (docs/design.md §2 and the simulator): EEG band powers 10/s, face
 * frames 15/s (cameras send 10-30/s; 15 is what the simulator and the reference camera send),
 * vehicle frames 10/s.
 */
const NOMINAL_RATE_PER_S: Record<Modality, number> = { eeg: 10, face: 15, vehicle: 10 };

/** Each score stands for one hop of event time (5 s in fatigue-v1: one score per session every 5 s). */
const SCORE_EVERY_MS = fatigueV1.hopMs;

export const ALERT_REASONS = ['drowsy', 'severe', 'microsleep', 'face_lost'] as const;

interface StreamQuality {
  received: number;
  expected: number;
  /** received / expected, 3 decimals; null when nothing was expected (no duration). */
  ratio: number | null;
  devices: number;
  /** Longest stretch without a frame, start and end of the session included, seconds (3 decimals). */
  largest_gap_s: number | null;
}

interface TrendPoint {
  /** Start of the UTC minute (as `fatigue_scores_1m` buckets it). */
  minute: string;
  score_avg: number;
  score_max: number;
  level_max: number;
  scores: number;
}

interface ReportAlertItem {
  alert_id: string;
  reason: string | null;
  level: number | null;
  status: string;
  raised_at: string | null;
  escalations: number;
  acknowledged_at: string | null;
  cleared_at: string | null;
  clear_reason: string | null;
}

/** The `report` jsonb document. */
export interface SessionReportDocument {
  version: 1;
  session_id: string;
  tenant_id: string;
  driver_id: string | null;
  vehicle_id: string | null;
  started_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  duration_s: number | null;
  /** False when the report was written before the projections caught up (see `pending`). */
  complete: boolean;
  pending: string[];
  model_versions: string[];
  scores: {
    count: number;
    mean: number | null;
    max: number | null;
    level_max: number | null;
    /** Event-time seconds at exactly level 0, 1 and 2. */
    seconds_at_level: { '0': number; '1': number; '2': number };
  };
  alerts: {
    count: number;
    by_reason: Record<(typeof ALERT_REASONS)[number], number>;
    level_max: number | null;
    escalations: number;
    acknowledged: number;
    items: ReportAlertItem[];
  };
  /** Microsleep alerts raised (one alert covers microsleeps less than 60 s apart). */
  microsleep_count: number;
  data_quality: Record<Modality, StreamQuality> & { game_events: number };
  trend: TrendPoint[];
}

/** The `session_reports` columns (besides `report` and `generated_at`). */
export interface SessionReportRow {
  session_id: string;
  tenant_id: string;
  driver_id: string | null;
  vehicle_id: string | null;
  started_at: string | null;
  ended_at: string | null;
  duration_s: number | null;
  model_version: string | null;
  score_avg: number | null;
  score_max: number | null;
  level_max: number | null;
  /** Seconds at level >= 1. */
  level1_s: number;
  /** Seconds at level 2. */
  level2_s: number;
  alert_count: number;
  microsleep_count: number;
}

export interface SessionReport {
  row: SessionReportRow;
  document: SessionReportDocument;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export function computeSessionReport(input: ReportInput): SessionReport {
  const { session, alerts, telemetry } = input;
  const scores = [...input.scores].sort((a, b) => a.ts - b.ts);
  const startMs = session.started_at ?? earliest(telemetry, scores);
  const endMs = session.ended_at;
  const durationMs = startMs !== null && endMs !== null ? Math.max(0, endMs - startMs) : null;

  // Time at each level: a score says the level over the hop that ends at its ts; after a gap in the
  // scores (no data, so no score) only its own hop counts.
  const msAtLevel = [0, 0, 0];
  let prevTs: number | null = null;
  for (const s of scores) {
    const span = prevTs === null ? SCORE_EVERY_MS : Math.min(SCORE_EVERY_MS, s.ts - prevTs);
    msAtLevel[Math.max(0, Math.min(2, s.level))]! += span;
    prevTs = s.ts;
  }
  const secondsAt = msAtLevel.map((ms) => Math.round(ms / 1000));

  const mean = scores.length ? round(scores.reduce((a, s) => a + s.score, 0) / scores.length, 2) : null;
  const max = scores.length ? Math.max(...scores.map((s) => s.score)) : null;
  const levelMax = scores.length ? Math.max(...scores.map((s) => s.level)) : null;
  const modelVersions = [...new Set(scores.map((s) => s.model_version))].sort();

  const raised = alerts
    .filter((a) => a.raised_at !== null)
    .sort((a, b) => a.raised_at! - b.raised_at! || (a.alert_id < b.alert_id ? -1 : 1));
  const byReason = Object.fromEntries(ALERT_REASONS.map((r) => [r, 0])) as Record<
    (typeof ALERT_REASONS)[number],
    number
  >;
  for (const a of raised) if (a.reason && a.reason in byReason) byReason[a.reason as keyof typeof byReason] += 1;
  const alertLevels = raised.map((a) => a.level).filter((l): l is number => l !== null);

  const quality = (m: Modality): StreamQuality => {
    const st = telemetry[m];
    const expected =
      durationMs === null ? 0 : Math.round((NOMINAL_RATE_PER_S[m] * Math.max(1, st.devices) * durationMs) / 1000);
    return {
      received: st.frames,
      expected,
      ratio: expected > 0 ? round(st.frames / expected, 3) : null,
      devices: st.devices,
      largest_gap_s:
        largestGapMs(st, startMs, endMs) === null ? null : round(largestGapMs(st, startMs, endMs)! / 1000, 3),
    };
  };

  const document: SessionReportDocument = {
    version: 1,
    session_id: session.session_id,
    tenant_id: session.tenant_id,
    driver_id: session.driver_id,
    vehicle_id: session.vehicle_id,
    started_at: iso(startMs),
    ended_at: iso(endMs),
    end_reason: session.end_reason,
    duration_s: durationMs === null ? null : Math.round(durationMs / 1000),
    complete: input.pending.length === 0,
    pending: [...input.pending],
    model_versions: modelVersions,
    scores: {
      count: scores.length,
      mean,
      max,
      level_max: levelMax,
      seconds_at_level: { '0': secondsAt[0]!, '1': secondsAt[1]!, '2': secondsAt[2]! },
    },
    alerts: {
      count: raised.length,
      by_reason: byReason,
      level_max: alertLevels.length ? Math.max(...alertLevels) : null,
      escalations: raised.reduce((a, x) => a + x.escalations, 0),
      acknowledged: raised.filter((a) => a.acknowledged_at !== null).length,
      items: raised.map((a) => ({
        alert_id: a.alert_id,
        reason: a.reason,
        level: a.level,
        status: a.status,
        raised_at: iso(a.raised_at),
        escalations: a.escalations,
        acknowledged_at: iso(a.acknowledged_at),
        cleared_at: iso(a.cleared_at),
        clear_reason: a.clear_reason,
      })),
    },
    microsleep_count: byReason.microsleep,
    data_quality: {
      eeg: quality('eeg'),
      face: quality('face'),
      vehicle: quality('vehicle'),
      game_events: telemetry.game_events,
    },
    trend: trendOf(scores),
  };

  return {
    document,
    row: {
      session_id: session.session_id,
      tenant_id: session.tenant_id,
      driver_id: session.driver_id,
      vehicle_id: session.vehicle_id,
      started_at: document.started_at,
      ended_at: document.ended_at,
      duration_s: document.duration_s,
      model_version: scores.length ? scores[scores.length - 1]!.model_version : null,
      score_avg: mean,
      score_max: max,
      level_max: levelMax,
      level1_s: secondsAt[1]! + secondsAt[2]!,
      level2_s: secondsAt[2]!,
      alert_count: raised.length,
      microsleep_count: byReason.microsleep,
    },
  };
}

/** Without a SessionStarted, the session starts at its first frame (or first scored window). */
function earliest(telemetry: ReportInput['telemetry'], scores: readonly ReportScore[]): number | null {
  const firsts = (['eeg', 'face', 'vehicle'] as const)
    .map((m) => telemetry[m].first_ts)
    .filter((t): t is number => t !== null);
  if (scores.length) firsts.push(scores[0]!.ts - SCORE_EVERY_MS);
  return firsts.length ? Math.min(...firsts) : null;
}

/** Largest stretch without a frame between the session's start and end; the whole span with no frame. */
function largestGapMs(st: StreamStats, startMs: number | null, endMs: number | null): number | null {
  if (st.frames === 0 || st.first_ts === null || st.last_ts === null) {
    return startMs !== null && endMs !== null ? Math.max(0, endMs - startMs) : null;
  }
  const gaps = [st.max_gap_ms ?? 0];
  if (startMs !== null) gaps.push(st.first_ts - startMs);
  if (endMs !== null) gaps.push(endMs - st.last_ts);
  return Math.max(0, ...gaps);
}

function trendOf(scores: readonly ReportScore[]): TrendPoint[] {
  const buckets = new Map<number, ReportScore[]>();
  for (const s of scores) {
    const minute = Math.floor(s.ts / 60_000) * 60_000;
    let b = buckets.get(minute);
    if (!b) buckets.set(minute, (b = []));
    b.push(s);
  }
  return [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([minute, b]) => ({
      minute: new Date(minute).toISOString(),
      score_avg: round(b.reduce((a, s) => a + s.score, 0) / b.length, 2),
      score_max: Math.max(...b.map((s) => s.score)),
      level_max: Math.max(...b.map((s) => s.level)),
      scores: b.length,
    }));
}
