import type { ChannelPower } from '../../schemas/types';
import { f32, clamp, type SessionContext, type SimEvent, type Stream } from './common';
import { Rng } from './random';

// Math bound once per module: see `f32` in common.ts.
const { exp, floor, round } = Math;

/** EEG epochs per second (docs/design.md §2: ~10/s). */
export const EEG_HZ = 10;
const CHANNELS = ['Fz', 'Cz', 'Pz', 'O1'] as const;
/** Share of epochs with a movement or electrode artefact on one channel (low quality, delta burst). */
const ARTEFACT_P = 0.01;

/**
 * EEG band powers at 10/s: epoch `seq` ends at start + (seq + 1) * 100 ms. (theta+alpha)/beta rises
 * with fatigue (Jap 2009): theta and alpha grow, beta shrinks; a microsleep adds a theta/alpha burst.
 * Log-normal noise keeps powers positive; values are float32 so an Avro `float` round trip is exact.
 */
export class EegStream implements Stream {
  ts: number;
  private seq = 0;
  private readonly frames: number;
  private readonly deviceId: string;

  constructor(
    private readonly ctx: SessionContext,
    private readonly rng: Rng,
    private readonly ids: Rng,
    deviceId: string,
  ) {
    this.deviceId = deviceId;
    this.frames = floor((ctx.durationMs * EEG_HZ) / 1000);
    this.ts = this.tsOf(0);
  }

  private tsOf(seq: number): number {
    return seq < this.frames ? this.ctx.startTs + round(((seq + 1) * 1000) / EEG_HZ) : Infinity;
  }

  take(): SimEvent {
    const { ctx, rng, ts } = this;
    const f = ctx.fatigue(ts);
    const burst = ctx.microsleeps.at(ts) >= 0 ? 1.6 : 1;
    const artefact = rng.chance(ARTEFACT_P) ? floor(rng.next() * CHANNELS.length) : -1;
    const channels: ChannelPower[] = [];
    for (let c = 0; c < CHANNELS.length; c++) {
      const bad = c === artefact;
      channels.push({
        channel: CHANNELS[c]!,
        delta_uv2: f32(20 * (bad ? 6 : 1) * exp(rng.normal(0, 0.15))),
        theta_uv2: f32(6 * (1 + 1.2 * f) * burst * exp(rng.normal(0, 0.15))),
        alpha_uv2: f32(8 * (1 + 0.8 * f) * burst * exp(rng.normal(0, 0.15))),
        beta_uv2: f32(10 * (1 - 0.4 * f) * exp(rng.normal(0, 0.15))),
        gamma_uv2: f32(2 * (bad ? 3 : 1) * exp(rng.normal(0, 0.15))),
        quality: f32(bad ? rng.uniform(0.1, 0.45) : clamp(rng.normal(0.92, 0.04), 0.6, 1)),
      });
    }
    const event: SimEvent = {
      topic: 'eeg',
      event: {
        event_id: this.ids.uuid(),
        tenant_id: ctx.tenantId,
        session_id: ctx.sessionId,
        device_id: this.deviceId,
        seq: this.seq,
        ts,
        channels,
      },
    };
    this.ts = this.tsOf(++this.seq);
    return event;
  }
}
