/**
 * Builders of input streams for the fatigue processor's specs (and for benchmarks): fixed event
 * times from T0, no clock, no randomness (the synthetic drive uses a seeded LCG).
 */
import type { AlertEvent, FatigueScored, GameEventKind } from '../../schemas/types';
import { fatigueV1, type FatigueModelConfig } from './config';
import { step } from './processor';
import { initialState, type FatigueInput, type FatigueOutput, type FatigueState, type TelemetryInput } from './state';

/** 2026-01-05T08:00:00Z, a multiple of the 5 s hop. */
export const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
export const SESSION = 'session-1';
export const TENANT = 'tenant-1';

/** The envelope fields plus `fields` (Object.assign: V8 is slow on `{ ...a, more }` literals). */
const envelope = <T extends object>(kind: string, ts: number, fields: T) =>
  Object.assign({ event_id: `${kind}-${SESSION}-${ts}`, tenant_id: TENANT, session_id: SESSION, ts }, fields);

export interface FaceOpts {
  /** eye_closure 0..1 (default 0.1, open); null when not measured */
  closure?: number | null;
  mouth?: number | null;
  detected?: boolean;
}

export function face(ts: number, o: FaceOpts = {}): TelemetryInput {
  const detected = o.detected ?? true;
  return {
    kind: 'face',
    event: envelope('face', ts, {
      device_id: 'cam-1',
      seq: ts - T0,
      face_detected: detected,
      eye_closure: detected ? (o.closure === undefined ? 0.1 : o.closure) : null,
      mouth_open: detected ? (o.mouth === undefined ? 0.1 : o.mouth) : null,
      head_pitch_deg: detected ? 0 : null,
      head_yaw_deg: detected ? 0 : null,
      head_roll_deg: detected ? 0 : null,
    }),
  };
}

export function vehicle(ts: number, o: { speed?: number; offset?: number | null } = {}): TelemetryInput {
  return {
    kind: 'vehicle',
    event: envelope('vehicle', ts, {
      device_id: 'car-1',
      seq: ts - T0,
      speed_kmh: o.speed ?? 80,
      lane_offset_m: o.offset === undefined ? 0 : o.offset,
      steering_deg: 0,
    }),
  };
}

/** One EEG frame whose channels all have (theta+alpha)/beta = ratio and the given quality. */
export function eeg(ts: number, o: { ratio?: number; quality?: number; channels?: number } = {}): TelemetryInput {
  const ratio = o.ratio ?? 1.5;
  return {
    kind: 'eeg',
    event: envelope('eeg', ts, {
      device_id: 'eeg-1',
      seq: ts - T0,
      channels: Array.from({ length: o.channels ?? 2 }, (_, i) => ({
        channel: `C${i}`,
        delta_uv2: 20,
        theta_uv2: ratio * 4,
        alpha_uv2: ratio * 6,
        beta_uv2: 10,
        gamma_uv2: 2,
        quality: o.quality ?? 0.9,
      })),
    }),
  };
}

export function game(ts: number, event: GameEventKind): TelemetryInput {
  return { kind: 'game', event: envelope('game', ts, { device_id: 'sim-1', seq: ts - T0, event }) };
}

export const departure = (ts: number): TelemetryInput =>
  game(ts, { type: 'LaneDeparture', side: 'LEFT', lane_offset_m: -1.9 });
export const shown = (ts: number, id = `st-${ts}`): TelemetryInput =>
  game(ts, { type: 'StimulusShown', stimulus_id: id });
export const response = (ts: number, reactionMs: number, id = `st-${ts}`): TelemetryInput =>
  game(ts, { type: 'StimulusResponse', stimulus_id: id, reaction_ms: reactionMs });
export const missed = (ts: number, id = `st-${ts}`): TelemetryInput =>
  game(ts, { type: 'StimulusMissed', stimulus_id: id, timeout_ms: 3000 });

export const sessionStarted = (ts: number): FatigueInput => ({
  kind: 'session',
  event: envelope('started', ts, {
    event: { type: 'SessionStarted' as const, driver_id: 'driver-1', vehicle_id: 'vehicle-1', devices: [] },
  }),
});

export const sessionEnded = (ts: number): FatigueInput => ({
  kind: 'session',
  event: envelope('ended', ts, { event: { type: 'SessionEnded' as const, reason: 'COMPLETED' as const } }),
});

export const ack = (ts: number, alertId: string, o: { by?: string; tenant?: string } = {}): FatigueInput => ({
  kind: 'command',
  event: envelope('ack', ts, {
    tenant_id: o.tenant ?? TENANT,
    event: { type: 'AcknowledgeAlert' as const, alert_id: alertId, acknowledged_by: o.by ?? 'operator-1' },
  }),
});

export const tick = (ts: number): FatigueInput => ({ kind: 'tick', ts });

export const tsOf = (i: FatigueInput): number => (i.kind === 'tick' ? i.ts : i.event.ts);

/** Inputs made at from, from + period, ... (< to); `make` may return null to skip a time. */
export function every(
  from: number,
  to: number,
  periodMs: number,
  make: (ts: number, i: number) => FatigueInput | null,
): FatigueInput[] {
  const out: FatigueInput[] = [];
  for (let ts = from, i = 0; ts < to; ts += periodMs, i++) {
    const x = make(ts, i);
    if (x) out.push(x);
  }
  return out;
}

/** Streams merged in ts order (stable: equal ts keep the order of the arguments). */
export function merge(...streams: FatigueInput[][]): FatigueInput[] {
  return streams
    .flat()
    .map((x, i) => ({ x, i }))
    .sort((a, b) => tsOf(a.x) - tsOf(b.x) || a.i - b.i)
    .map(({ x }) => x);
}

export interface Run {
  state: FatigueState;
  outputs: FatigueOutput[];
  scores: FatigueScored[];
  alerts: AlertEvent[];
  late: TelemetryInput[];
  /** Telemetry dropped as a copy of one the reorder buffer held. */
  duplicates: TelemetryInput[];
}

/** Feeds inputs one by one (from a fresh state unless given one) and collects the outputs. */
export function run(inputs: FatigueInput[], o: { state?: FatigueState; config?: FatigueModelConfig } = {}): Run {
  const config = o.config ?? fatigueV1;
  let state = o.state ?? initialState(SESSION, config);
  const outputs: FatigueOutput[] = [];
  for (const input of inputs) {
    const r = step(state, input, config);
    state = r.state;
    outputs.push(...r.outputs);
  }
  return { state, outputs, ...split(outputs) };
}

export function split(outputs: FatigueOutput[]): Omit<Run, 'state' | 'outputs'> {
  const scores: FatigueScored[] = [];
  const alerts: AlertEvent[] = [];
  const late: TelemetryInput[] = [];
  const duplicates: TelemetryInput[] = [];
  for (const o of outputs) {
    if (o.kind === 'score') scores.push(o.event);
    else if (o.kind === 'alert') alerts.push(o.event);
    else if (o.kind === 'late') late.push(o.input);
    else duplicates.push(o.input);
  }
  return { scores, alerts, late, duplicates };
}

export const scoreAt = (r: Pick<Run, 'scores'>, end: number): FatigueScored | undefined =>
  r.scores.find((s) => s.window_end_ts === end);

/**
 * Alert events as short strings, seconds after T0: `+61 AlertRaised microsleep L2`,
 * `+91 AlertEscalated 1`, `+121 AlertCleared recovered`, `+95 AlertAcknowledged`.
 */
export function alertLog(alerts: AlertEvent[]): string[] {
  return alerts.map((a) => {
    const t = `+${(a.ts - T0) / 1000}`;
    const e = a.event;
    switch (e.type) {
      case 'AlertRaised':
        return `${t} AlertRaised ${e.reason} L${e.level}`;
      case 'AlertEscalated':
        return `${t} AlertEscalated ${e.count}`;
      case 'AlertAcknowledged':
        return `${t} AlertAcknowledged`;
      case 'AlertCleared':
        return `${t} AlertCleared ${e.reason}`;
    }
  });
}

/** Telemetry that counts for no component (a collision) and moves the watermark past every window ending at or before `ts`. */
export const pushWatermark = (ts: number, c: FatigueModelConfig = fatigueV1): FatigueInput =>
  game(ts + c.allowedLatenessMs, { type: 'Collision', object: 'cone', speed_kmh: 0 });

/** Open-eyed face frames at 10 Hz over [from, to), optionally with overrides at some frames. */
export const faceAt10Hz = (
  from: number,
  to: number,
  o: (ts: number, i: number) => FaceOpts = () => ({}),
): FatigueInput[] => every(from, to, 100, (ts, i) => face(ts, o(ts, i)));

/** A small seeded generator (LCG): synthetic drives must be reproducible. */
class Lcg {
  private x: number;
  constructor(seed: number) {
    this.x = seed >>> 0;
  }
  next(): number {
    this.x = (Math.imul(this.x, 1664525) + 1013904223) >>> 0;
    return this.x / 4294967296;
  }
}

/**
 * A synthetic drive with all four streams (face 10 Hz, vehicle 10 Hz, EEG 10 Hz, a stimulus every
 * 10 s) whose fatigue follows `fatigue(t)` (t = ms since start, result 0..1): longer blinks, more
 * weaving, higher EEG ratio and slower reactions as it rises.
 */
export function drive(o: DriveOpts): FatigueInput[] {
  return [...driveEvents(o)];
}

export interface DriveOpts {
  from: number;
  durationMs: number;
  seed?: number;
  fatigue?: (t: number) => number;
}

/** The same drive, generated lazily (long sessions need not be held in memory). */
export function* driveEvents(o: DriveOpts): Generator<FatigueInput> {
  const rng = new Lcg(o.seed ?? 7);
  const fatigue = o.fatigue ?? (() => 0.2);
  const to = o.from + o.durationMs;
  let closedUntil = -Infinity;
  let yawnUntil = -Infinity;
  for (let ts = o.from; ts < to; ts += 100) {
    const f = fatigue(ts - o.from);
    // blink about every 4 s, 100-600 ms long with fatigue; yawn now and then
    if (ts >= closedUntil && rng.next() < 0.025) closedUntil = ts + 100 + Math.round(f * 5 * rng.next()) * 100;
    if (ts >= yawnUntil && rng.next() < 0.0005 + 0.002 * f) yawnUntil = ts + 2000;
    yield face(ts, { closure: ts < closedUntil ? 0.95 : 0.1, mouth: ts < yawnUntil ? 0.8 : 0.1 });
    const offset = Math.round((0.15 + 0.3 * f) * Math.sin((ts - o.from) / 3000) * 1000) / 1000;
    yield vehicle(ts + 30, { speed: 90, offset });
    yield eeg(ts + 60, { ratio: Math.round((1.4 + 0.8 * f + 0.1 * rng.next()) * 1000) / 1000 });
    if ((ts - o.from) % 10_000 === 0) {
      yield shown(ts + 10);
      yield response(ts + 310, 250 + Math.round(400 * f * rng.next()));
    }
  }
}

/**
 * Face frames at 10 Hz over [from, to): eyes open and mouth closed, except during the given eye
 * closures and mouth openings ([start, durationMs], start on the 100 ms grid). An episode ending off
 * the grid gets an extra frame at its end, so its duration is exact (durations run from the first
 * frame of an episode to the first frame after it).
 */
export function faceEpisodes(
  from: number,
  to: number,
  o: { closures?: [number, number][]; mouth?: [number, number][]; mouthLevel?: number } = {},
): FatigueInput[] {
  const closures = o.closures ?? [];
  const mouth = o.mouth ?? [];
  const times = new Set<number>();
  for (let ts = from; ts < to; ts += 100) times.add(ts);
  for (const [s, d] of [...closures, ...mouth]) if (s + d < to) times.add(s + d);
  const inside = (eps: [number, number][], ts: number) => eps.some(([s, d]) => ts >= s && ts < s + d);
  return [...times]
    .sort((a, b) => a - b)
    .map((ts) =>
      face(ts, { closure: inside(closures, ts) ? 0.95 : 0.1, mouth: inside(mouth, ts) ? (o.mouthLevel ?? 0.8) : 0.1 }),
    );
}
