import type { EegBandPower, SessionEvent } from '../../schemas/types';
import { Rng, deriveSeed } from './random';

/**
 * Pure, seeded generator of one simulated session's events in event-time order. No clock, no I/O:
 * the same (seed, index, start) gives the same events, byte for byte once encoded.
 */

export type Profile = 'alert' | 'drowsy' | 'severe';
export const profiles: readonly Profile[] = ['alert', 'drowsy', 'severe'];

export interface SessionPlan {
  seed: number;
  index: number;
  tenantId: string;
  startTs: number;
  durationMs: number;
  profile: Profile;
}

export type SimEvent = { topic: 'sessions'; event: SessionEvent } | { topic: 'eeg'; event: EegBandPower };

/** EEG epochs per second (DESIGN section 3: ~10/s). */
export const EEG_HZ = 10;
const CHANNELS = ['Fz', 'Cz', 'Pz', 'O1'] as const;

/** Fatigue 0..1 at `t` (0..1 of the session) for a profile: alert stays low, the others rise. */
export function fatigueAt(profile: Profile, t: number): number {
  if (profile === 'alert') return 0.1;
  const peak = profile === 'drowsy' ? 0.6 : 0.95;
  return 0.1 + (peak - 0.1) * Math.min(1, Math.max(0, t));
}

export function sessionIdOf(seed: number, index: number): string {
  return new Rng(deriveSeed(seed, `session-${index}`)).uuid();
}

export function* sessionEvents(plan: SessionPlan): Generator<SimEvent> {
  const rng = new Rng(deriveSeed(plan.seed, `events-${plan.index}`));
  const sessionId = sessionIdOf(plan.seed, plan.index);
  const eegDevice = `eeg-${sessionId.slice(0, 8)}`;
  const base = { tenant_id: plan.tenantId, session_id: sessionId };

  yield {
    topic: 'sessions',
    event: {
      ...base,
      event_id: rng.uuid(),
      ts: plan.startTs,
      event: {
        type: 'SessionStarted',
        driver_id: `driver-${plan.index % 97}`,
        vehicle_id: `vehicle-${plan.index}`,
        devices: [{ device_id: eegDevice, kind: 'EEG' }],
      },
    },
  };

  const frames = Math.floor((plan.durationMs * EEG_HZ) / 1000);
  for (let seq = 0; seq < frames; seq++) {
    const ts = plan.startTs + Math.round(((seq + 1) * 1000) / EEG_HZ);
    const f = fatigueAt(plan.profile, (ts - plan.startTs) / plan.durationMs);
    yield {
      topic: 'eeg',
      event: { ...base, event_id: rng.uuid(), device_id: eegDevice, seq, ts, channels: eegChannels(rng, f) },
    };
  }

  yield {
    topic: 'sessions',
    event: {
      ...base,
      event_id: rng.uuid(),
      ts: plan.startTs + plan.durationMs,
      event: { type: 'SessionEnded', reason: 'COMPLETED' },
    },
  };
}

/**
 * Band powers whose (theta+alpha)/beta ratio rises with fatigue (Jap 2009): theta and alpha grow,
 * beta shrinks. Log-normal noise keeps powers positive. Rounded to float32-friendly precision so a
 * round trip through Avro `float` is stable.
 */
function eegChannels(rng: Rng, fatigue: number): EegBandPower['channels'] {
  return CHANNELS.map((channel) => {
    const p = (mean: number) => Math.fround(mean * Math.exp(rng.normal(0, 0.15)));
    return {
      channel,
      delta_uv2: p(20),
      theta_uv2: p(6 * (1 + 1.2 * fatigue)),
      alpha_uv2: p(8 * (1 + 0.8 * fatigue)),
      beta_uv2: p(10 * (1 - 0.4 * fatigue)),
      gamma_uv2: p(2),
      quality: Math.fround(Math.min(1, Math.max(0, rng.normal(0.92, 0.05)))),
    };
  });
}
