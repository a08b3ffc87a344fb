import type { EegBandPower, FaceFrame, GameEvent, SessionEvent, VehicleFrame } from '../../schemas/types';
import type { Microsleeps } from './fatigue';

const { exp, sqrt } = Math;

/** One generated event and the catalogue topic it belongs on. */
export type SimEvent =
  | { topic: 'sessions'; event: SessionEvent }
  | { topic: 'eeg'; event: EegBandPower }
  | { topic: 'face'; event: FaceFrame }
  | { topic: 'vehicle'; event: VehicleFrame }
  | { topic: 'game'; event: GameEvent };

/** The telemetry modalities, in the fixed order that breaks event-time ties. */
export type Modality = 'eeg' | 'face' | 'vehicle' | 'game';
export const modalities: readonly Modality[] = ['eeg', 'face', 'vehicle', 'game'];

/** What every modality of one session shares. */
export interface SessionContext {
  tenantId: string;
  sessionId: string;
  startTs: number;
  durationMs: number;
  endTs: number;
  microsleeps: Microsleeps;
  /** Fatigue 0..1 at an event time of the session. */
  fatigue(ts: number): number;
}

/** A pull stream of one modality's events: `ts` is the next event's time (Infinity when done). */
export interface Stream {
  readonly ts: number;
  take(): SimEvent;
}

/** Stationary AR(1) (a sampled Ornstein-Uhlenbeck process) with time constant tau and sd. */
export class Ar1 {
  value: number;
  private readonly phi: number;
  private readonly innovation: number;

  constructor(
    initial: number,
    tauS: number,
    readonly sd: number,
    dtS: number,
  ) {
    this.value = initial;
    this.phi = exp(-dtS / tauS);
    this.innovation = sd * sqrt(1 - this.phi * this.phi);
  }

  step(z: number): number {
    return (this.value = this.phi * this.value + this.innovation * z);
  }
}

/**
 * Float32 rounding: measures are Avro `float`s, so the generated value is what a consumer decodes.
 *
 * The simulator's modules take Math's functions into module constants (`const { exp } = Math`):
 * inside jest's vm contexts every global lookup is slow (tens of times slower than a local), and the
 * tests generate millions of events; plain node does not care either way.
 */
export const f32 = Math.fround;
export const clamp = (x: number, lo: number, hi: number) => (x < lo ? lo : x > hi ? hi : x);
