/**
 * TypeScript shapes of the catalogue's events, as the application sees them. The `.avsc` files in
 * schemas/avro are the contract; `types.unit.spec.ts` checks these shapes against them (every field,
 * every union branch), so a drift between the two fails the build.
 *
 * Conventions: `ts` is event time in epoch milliseconds; multi-kind topics carry the kind in
 * `event.type` (the Avro union branch's record name).
 */

export type DeviceKind = 'EEG' | 'CAMERA' | 'VEHICLE' | 'SIMULATOR';

interface Envelope {
  event_id: string;
  tenant_id: string;
  session_id: string;
  ts: number;
}

export interface SessionStarted {
  type: 'SessionStarted';
  driver_id: string;
  vehicle_id: string;
  devices: { device_id: string; kind: DeviceKind }[];
}

export interface SessionEnded {
  type: 'SessionEnded';
  reason: 'COMPLETED' | 'ABORTED' | 'TIMEOUT';
}

/** dev.vigil.sessions.v1.SessionEvent */
export interface SessionEvent extends Envelope {
  event: SessionStarted | SessionEnded;
}

export interface ChannelPower {
  channel: string;
  delta_uv2: number;
  theta_uv2: number;
  alpha_uv2: number;
  beta_uv2: number;
  gamma_uv2: number;
  quality: number;
}

/** dev.vigil.telemetry.eeg.v1.EegBandPower */
export interface EegBandPower extends Envelope {
  device_id: string;
  seq: number;
  channels: ChannelPower[];
}

/** dev.vigil.telemetry.face.v1.FaceFrame */
export interface FaceFrame extends Envelope {
  device_id: string;
  seq: number;
  face_detected: boolean;
  eye_closure: number | null;
  mouth_open: number | null;
  head_pitch_deg: number | null;
  head_yaw_deg: number | null;
  head_roll_deg: number | null;
}

/** dev.vigil.telemetry.vehicle.v1.VehicleFrame */
export interface VehicleFrame extends Envelope {
  device_id: string;
  seq: number;
  speed_kmh: number;
  lane_offset_m: number | null;
  steering_deg: number;
}

export type GameEventKind =
  | { type: 'LaneDeparture'; side: 'LEFT' | 'RIGHT'; lane_offset_m: number }
  | { type: 'Collision'; object: string; speed_kmh: number }
  | { type: 'StimulusShown'; stimulus_id: string }
  | { type: 'StimulusResponse'; stimulus_id: string; reaction_ms: number }
  | { type: 'StimulusMissed'; stimulus_id: string; timeout_ms: number };

/** dev.vigil.game.events.v1.GameEvent */
export interface GameEvent extends Envelope {
  device_id: string;
  seq: number;
  event: GameEventKind;
}

export interface FatigueComponents {
  ocular: number | null;
  driving: number | null;
  eeg: number | null;
  reaction: number | null;
  yawn: number | null;
}

export interface FatigueFeatures {
  perclos: number | null;
  long_blink_share: number | null;
  sdlp_m: number | null;
  lane_departures: number;
  eeg_ratio: number | null;
  eeg_ratio_z: number | null;
  lapses: number;
  yawns: number;
}

/** dev.vigil.fatigue.scores.v1.FatigueScored */
export interface FatigueScored extends Envelope {
  window_start_ts: number;
  window_end_ts: number;
  score: number;
  level: number;
  components: FatigueComponents;
  features: FatigueFeatures;
  baseline_ready: boolean;
  model_version: string;
}

export type AlertReason = 'drowsy' | 'severe' | 'microsleep' | 'face_lost';

export type AlertEventKind =
  | { type: 'AlertRaised'; alert_id: string; level: number; reason: AlertReason; score: number | null }
  | { type: 'AlertEscalated'; alert_id: string; level: number; count: number }
  | { type: 'AlertAcknowledged'; alert_id: string; acknowledged_by: string }
  | { type: 'AlertCleared'; alert_id: string; reason: 'recovered' | 'session_ended' };

/** dev.vigil.fatigue.alerts.v1.AlertEvent */
export interface AlertEvent extends Envelope {
  event: AlertEventKind;
}

/** dev.vigil.commands.v1.Command */
export interface Command extends Envelope {
  event: { type: 'AcknowledgeAlert'; alert_id: string; acknowledged_by: string };
}
