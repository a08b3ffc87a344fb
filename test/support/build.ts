import { uuidFrom } from '../../processors/fatigue/ids';
import type {
  AlertEvent,
  AlertEventKind,
  ChannelPower,
  EegBandPower,
  FaceFrame,
  FatigueComponents,
  FatigueFeatures,
  FatigueScored,
  GameEvent,
  GameEventKind,
  SessionEvent,
  SessionEnded,
  SessionStarted,
  VehicleFrame,
} from '../../schemas/types';

/**
 * Data factories: one valid event per call, so a spec writes only the fields it is about.
 *
 * Every built event passes the rule table (schemas/rules.ts): a UUID `event_id`, a session id of
 * 8-128 characters, timestamps in 2000-2100, fractions in [0, 1]. Default values are exact in float32
 * (0.5, 0.25, 0.125), so what a spec reads back from Avro equals what it built. An `event_id` not
 * given is derived from the event's identity (the same arguments give the same id, as a producer
 * retry or a replay would), different windows or alert steps get different ids.
 */

/** Default event time: 2026-01-01T08:01:00Z (a score's window end; its window starts at 08:00). */
export const BUILD_TS = Date.UTC(2026, 0, 1, 8, 1);
const BUILD_TENANT = 'tenant-a';
const BUILD_SESSION = 'session-0001';
/** fatigue-v1 scores 60 s windows (processors/fatigue/config.ts, `windowMs`). */
const WINDOW_MS = 60_000;

type Envelope = Pick<FatigueScored, 'event_id' | 'tenant_id' | 'session_id' | 'ts'>;

type ScoreOverrides = Partial<Omit<FatigueScored, 'components' | 'features'>> & {
  /** Merged into the defaults: `{ ocular: 0.75 }` changes that component only. */
  components?: Partial<FatigueComponents>;
  /** Merged into the defaults. */
  features?: Partial<FatigueFeatures>;
};

/**
 * A `FatigueScored` of fatigue-v1. `ts` is the window end: given alone, `window_end_ts` is `ts` and
 * `window_start_ts` 60 s before it, as the processor emits them.
 */
export function buildScore(overrides: ScoreOverrides = {}): FatigueScored {
  const { components, features, ...rest } = overrides;
  const ts = rest.ts ?? rest.window_end_ts ?? BUILD_TS;
  const score: Omit<FatigueScored, 'event_id'> = {
    tenant_id: BUILD_TENANT,
    session_id: BUILD_SESSION,
    ts,
    window_start_ts: (rest.window_end_ts ?? ts) - WINDOW_MS,
    window_end_ts: ts,
    score: 42.5,
    level: 0,
    components: { ocular: 0.5, driving: null, eeg: null, reaction: 0.25, yawn: 0, ...components },
    features: {
      perclos: 0.125,
      long_blink_share: null,
      sdlp_m: null,
      lane_departures: 0,
      eeg_ratio: null,
      eeg_ratio_z: null,
      lapses: 0,
      yawns: 0,
      ...features,
    },
    baseline_ready: false,
    model_version: 'fatigue-v1',
    ...rest,
  };
  return {
    event_id:
      rest.event_id ?? uuidFrom('build', 'score', score.tenant_id, score.session_id, score.model_version, score.ts),
    ...score,
  };
}

type AlertKind = AlertEventKind['type'];
type AlertFields<K extends AlertKind> = Omit<Extract<AlertEventKind, { type: K }>, 'type'>;

const alertDefaults: { [K in AlertKind]: AlertFields<K> } = {
  AlertRaised: { alert_id: 'alert-1', level: 1, reason: 'drowsy', score: 55.5 },
  AlertEscalated: { alert_id: 'alert-1', level: 1, count: 1 },
  AlertAcknowledged: { alert_id: 'alert-1', acknowledged_by: 'ops@fleet' },
  AlertCleared: { alert_id: 'alert-1', reason: 'recovered' },
};

/** Envelope and the kind's own fields in one flat object: `{ ts, alert_id, level, reason, score }`. */
type AlertOverrides<K extends AlertKind> = Partial<Envelope> & Partial<AlertFields<K>>;

/** An `AlertEvent` of the given kind (`AlertRaised`, ...). */
export function buildAlert<K extends AlertKind>(kind: K, overrides: AlertOverrides<K> = {}): AlertEvent {
  const { event_id, tenant_id = BUILD_TENANT, session_id = BUILD_SESSION, ts = BUILD_TS, ...fields } = overrides;
  const event = { type: kind, ...alertDefaults[kind], ...fields } as unknown as AlertEventKind;
  return {
    event_id: event_id ?? uuidFrom('build', 'alert', tenant_id, session_id, event.alert_id, kind, ts),
    tenant_id,
    session_id,
    ts,
    event,
  };
}

/** A `FaceFrame` with a face detected, eyes half closed, head straight. */
export function buildFace(overrides: Partial<FaceFrame> = {}): FaceFrame {
  const frame: Omit<FaceFrame, 'event_id'> = {
    tenant_id: BUILD_TENANT,
    session_id: BUILD_SESSION,
    ts: BUILD_TS,
    device_id: 'cam-1',
    seq: 0,
    face_detected: true,
    eye_closure: 0.5,
    mouth_open: 0.125,
    head_pitch_deg: 0,
    head_yaw_deg: 0,
    head_roll_deg: 0,
    ...overrides,
  };
  return {
    event_id:
      overrides.event_id ??
      uuidFrom('build', 'face', frame.tenant_id, frame.session_id, frame.device_id, frame.seq, frame.ts),
    ...frame,
  };
}

/** One EEG channel's band powers: theta and alpha up, as in a drowsy driver; a good contact. */
export function buildChannel(overrides: Partial<ChannelPower> = {}): ChannelPower {
  return {
    channel: 'Fz',
    delta_uv2: 8,
    theta_uv2: 6.5,
    alpha_uv2: 4.25,
    beta_uv2: 2.5,
    gamma_uv2: 0.75,
    quality: 0.875,
    ...overrides,
  };
}

/** An `EegBandPower` frame of one channel (`buildChannel`); `channels` given replaces the list. */
export function buildEeg(overrides: Partial<EegBandPower> = {}): EegBandPower {
  const frame: Omit<EegBandPower, 'event_id'> = {
    tenant_id: BUILD_TENANT,
    session_id: BUILD_SESSION,
    ts: BUILD_TS,
    device_id: 'eeg-1',
    seq: 0,
    channels: [buildChannel()],
    ...overrides,
  };
  return {
    event_id:
      overrides.event_id ??
      uuidFrom('build', 'eeg', frame.tenant_id, frame.session_id, frame.device_id, frame.seq, frame.ts),
    ...frame,
  };
}

/** A `VehicleFrame`: 80 km/h, a quarter metre right of the lane centre, steering slightly left. */
export function buildVehicle(overrides: Partial<VehicleFrame> = {}): VehicleFrame {
  const frame: Omit<VehicleFrame, 'event_id'> = {
    tenant_id: BUILD_TENANT,
    session_id: BUILD_SESSION,
    ts: BUILD_TS,
    device_id: 'vehicle-bus-1',
    seq: 0,
    speed_kmh: 80,
    lane_offset_m: 0.25,
    steering_deg: -1.5,
    ...overrides,
  };
  return {
    event_id:
      overrides.event_id ??
      uuidFrom('build', 'vehicle', frame.tenant_id, frame.session_id, frame.device_id, frame.seq, frame.ts),
    ...frame,
  };
}

type GameKind = GameEventKind['type'];
type GameFields<K extends GameKind> = Omit<Extract<GameEventKind, { type: K }>, 'type'>;

const gameDefaults: { [K in GameKind]: GameFields<K> } = {
  LaneDeparture: { side: 'LEFT', lane_offset_m: -1.75 },
  Collision: { object: 'cone', speed_kmh: 42 },
  StimulusShown: { stimulus_id: 'stimulus-1' },
  StimulusResponse: { stimulus_id: 'stimulus-1', reaction_ms: 312 },
  StimulusMissed: { stimulus_id: 'stimulus-1', timeout_ms: 1500 },
};

/** Envelope, device and the kind's own fields in one flat object: `{ ts, seq, stimulus_id, reaction_ms }`. */
type GameOverrides<K extends GameKind> = Partial<Omit<GameEvent, 'event'>> & Partial<GameFields<K>>;

/** A `GameEvent` of the given kind (`LaneDeparture`, `StimulusResponse`, ...). */
export function buildGame<K extends GameKind>(kind: K, overrides: GameOverrides<K> = {}): GameEvent {
  const {
    event_id,
    tenant_id = BUILD_TENANT,
    session_id = BUILD_SESSION,
    ts = BUILD_TS,
    device_id = 'simulator-1',
    seq = 0,
    ...fields
  } = overrides;
  const event = { type: kind, ...gameDefaults[kind], ...fields } as unknown as GameEventKind;
  return {
    event_id: event_id ?? uuidFrom('build', 'game', tenant_id, session_id, device_id, seq, kind, ts),
    tenant_id,
    session_id,
    ts,
    device_id,
    seq,
    event,
  };
}

type SessionKind = SessionEvent['event']['type'];
type SessionFields<K extends SessionKind> = Omit<Extract<SessionStarted | SessionEnded, { type: K }>, 'type'>;

const sessionDefaults: { [K in SessionKind]: SessionFields<K> } = {
  SessionStarted: { driver_id: 'driver-1', vehicle_id: 'vehicle-1', devices: [{ device_id: 'cam-1', kind: 'CAMERA' }] },
  SessionEnded: { reason: 'COMPLETED' },
};

/** Envelope and the kind's own fields in one flat object: `{ ts, driver_id }` or `{ ts, reason }`. */
type SessionOverrides<K extends SessionKind> = Partial<Envelope> & Partial<SessionFields<K>>;

/** A `SessionEvent` of the given kind (`SessionStarted` or `SessionEnded`). */
export function buildSession<K extends SessionKind>(kind: K, overrides: SessionOverrides<K> = {}): SessionEvent {
  const { event_id, tenant_id = BUILD_TENANT, session_id = BUILD_SESSION, ts = BUILD_TS, ...fields } = overrides;
  const event = { type: kind, ...sessionDefaults[kind], ...fields } as unknown as SessionEvent['event'];
  return {
    event_id: event_id ?? uuidFrom('build', 'session', tenant_id, session_id, kind, ts),
    tenant_id,
    session_id,
    ts,
    event,
  };
}
