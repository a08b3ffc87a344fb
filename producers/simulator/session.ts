import type { DeviceKind } from '../../schemas/types';
import { modalities, type Modality, type SessionContext, type SimEvent, type Stream } from './common';
import { Driving } from './driving';
import { EegStream } from './eeg';
import { FaceStream } from './face';
import { fatigueAt, Microsleeps, type Profile } from './fatigue';
import { Rng, deriveSeed } from './random';

/**
 * Pure, seeded generator of one simulated session's events in event-time order. No clock, no I/O:
 * the same (seed, index, start) gives the same events, byte for byte once encoded.
 *
 * Every modality is its own stream with its own seeded generators (values and event ids), so leaving
 * a modality out does not change the others' events. The streams share the session's latent driver
 * state (fatigue over time and the microsleeps), so eyes, lane position and reactions agree. They
 * are merged by event time; ties go eeg, face, vehicle, game. SessionStarted comes first and
 * SessionEnded (at start + duration, the time of the last EEG epoch) last.
 */

export { EEG_HZ } from './eeg';
export { FACE_HZ, CLOSED, YAWN_OPEN } from './face';
export { VEHICLE_HZ, LANE_DEPARTURE_M, LANE_REARM_M, STIMULUS_TIMEOUT_MS } from './driving';
export { fatigueAt, profiles, type Profile } from './fatigue';
export { modalities, type Modality, type SimEvent } from './common';

export interface SessionPlan {
  seed: number;
  index: number;
  tenantId: string;
  startTs: number;
  durationMs: number;
  profile: Profile;
  /** Telemetry modalities to emit (default: all). The sessions topic is always emitted. */
  modalities?: readonly Modality[];
}

export function sessionIdOf(seed: number, index: number): string {
  return new Rng(deriveSeed(seed, `session-${index}`)).uuid();
}

const KINDS: Record<Modality, DeviceKind> = { eeg: 'EEG', face: 'CAMERA', vehicle: 'VEHICLE', game: 'SIMULATOR' };
const PREFIX: Record<Modality, string> = { eeg: 'eeg', face: 'cam', vehicle: 'veh', game: 'sim' };

/** The session's device ids: one per modality, stable for a session id. */
function deviceIdOf(sessionId: string, modality: Modality): string {
  return `${PREFIX[modality]}-${sessionId.slice(0, 8)}`;
}

export function* sessionEvents(plan: SessionPlan): Generator<SimEvent> {
  const sessionId = sessionIdOf(plan.seed, plan.index);
  const rngOf = (label: string) => new Rng(deriveSeed(plan.seed, `${label}-${plan.index}`));
  const ids = rngOf('events');
  const base = { tenant_id: plan.tenantId, session_id: sessionId };
  const endTs = plan.startTs + plan.durationMs;
  const fatigue = (ts: number) =>
    fatigueAt(plan.profile, plan.durationMs > 0 ? (ts - plan.startTs) / plan.durationMs : 0);
  const ctx: SessionContext = {
    tenantId: plan.tenantId,
    sessionId,
    startTs: plan.startTs,
    durationMs: plan.durationMs,
    endTs,
    fatigue,
    microsleeps: new Microsleeps(rngOf('driver'), fatigue, plan.startTs, endTs),
  };

  const selected = modalities.filter((m) => (plan.modalities ?? modalities).includes(m));
  const streams: Stream[] = [];
  const emit: boolean[] = [];
  const device = (m: Modality) => deviceIdOf(sessionId, m);
  if (selected.includes('eeg')) {
    streams.push(new EegStream(ctx, rngOf('eeg'), rngOf('eeg-ids'), device('eeg')));
    emit.push(true);
  }
  if (selected.includes('face')) {
    streams.push(new FaceStream(ctx, rngOf('face'), rngOf('face-ids'), device('face')));
    emit.push(true);
  }
  if (selected.includes('vehicle') || selected.includes('game')) {
    // The game reports what the car does, so the car runs whenever either is wanted.
    const rig = new Driving(
      ctx,
      rngOf('vehicle'),
      rngOf('vehicle-ids'),
      rngOf('game-ids'),
      device('vehicle'),
      device('game'),
    );
    streams.push(rig.vehicle, rig.game);
    emit.push(selected.includes('vehicle'), selected.includes('game'));
  }

  yield {
    topic: 'sessions',
    event: {
      ...base,
      event_id: ids.uuid(),
      ts: plan.startTs,
      event: {
        type: 'SessionStarted',
        driver_id: `driver-${plan.index % 97}`,
        vehicle_id: `vehicle-${plan.index}`,
        devices: selected.map((m) => ({ device_id: device(m), kind: KINDS[m] })),
      },
    },
  };

  for (;;) {
    let next = -1;
    let nextTs = Infinity;
    for (let i = 0; i < streams.length; i++) {
      const ts = streams[i]!.ts;
      if (ts < nextTs) {
        nextTs = ts;
        next = i;
      }
    }
    if (next < 0) break;
    const e = streams[next]!.take();
    if (emit[next]) yield e;
  }

  yield {
    topic: 'sessions',
    event: {
      ...base,
      event_id: ids.uuid(),
      ts: endTs,
      event: { type: 'SessionEnded', reason: 'COMPLETED' },
    },
  };
}
