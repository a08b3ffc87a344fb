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
