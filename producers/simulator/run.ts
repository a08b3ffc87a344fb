import { setTimeout as sleep } from 'node:timers/promises';
import type { Publisher } from '../publisher';
import type { EegBandPower, SessionEvent } from '../../schemas/types';
import { sessionEvents, sessionIdOf, profiles, type Profile, type SimEvent } from './session';

export interface SimulateOptions {
  sessions: number;
  durationMs: number;
  speed: 'realtime' | 'max';
  seed: number;
  profile: Profile | 'mixed';
  tenantId: string;
  /** Event time of the sessions' start (epoch ms). */
  startTs: number;
}

export interface SimulationResult {
  sessionIds: string[];
  published: { sessions: number; eeg: number };
}

/** Simulated time advances in ticks: in real time one 100 ms tick per wall-clock 100 ms; at max speed 5 s ticks. */
const REALTIME_TICK_MS = 100;
const MAX_SPEED_TICK_MS = 5_000;
/** At max speed, events are sent in batches of this many per topic. */
const MAX_BATCH = 500;

export const profileOf = (opts: Pick<SimulateOptions, 'profile'>, index: number): Profile =>
  opts.profile === 'mixed' ? profiles[index % profiles.length]! : opts.profile;

/**
 * Drives `opts.sessions` concurrent sessions through the publisher. Realtime paces event time against
 * the wall clock (one batch per 100 ms tick); max publishes as fast as Kafka acknowledges. Either way
 * the events are the same for the same options.
 */
export async function runSimulation(
  publisher: Publisher,
  opts: SimulateOptions,
  signal?: AbortSignal,
): Promise<SimulationResult> {
  const gens = Array.from({ length: opts.sessions }, (_, index) =>
    sessionEvents({
      seed: opts.seed,
      index,
      tenantId: opts.tenantId,
      startTs: opts.startTs,
      durationMs: opts.durationMs,
      profile: profileOf(opts, index),
    }),
  );
  const pending = gens.map((g) => g.next());
  const published = { sessions: 0, eeg: 0 };
  const wallStart = performance.now();
  const tick = opts.speed === 'realtime' ? REALTIME_TICK_MS : MAX_SPEED_TICK_MS;

  for (let simNow = opts.startTs; ; simNow += tick) {
    if (signal?.aborted) break;
    const batch = { sessions: [] as SessionEvent[], eeg: [] as EegBandPower[] };
    let live = false;
    for (let i = 0; i < gens.length; i++) {
      let r = pending[i]!;
      while (!r.done && r.value.event.ts <= simNow) {
        push(batch, r.value);
        r = gens[i]!.next();
      }
      pending[i] = r;
      live ||= !r.done;
    }
    // Session events first, so a consumer sees SessionStarted no later than the session's frames.
    for (const topic of ['sessions', 'eeg'] as const) {
      const events = batch[topic];
      for (let i = 0; i < events.length; i += MAX_BATCH) {
        await publisher.publish(topic, events.slice(i, i + MAX_BATCH) as never);
      }
      published[topic] += events.length;
    }
    if (!live) break;
    if (opts.speed === 'realtime') {
      const due = wallStart + (simNow + tick - opts.startTs);
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {});
    }
  }
  return { sessionIds: Array.from({ length: opts.sessions }, (_, i) => sessionIdOf(opts.seed, i)), published };
}

function push(batch: { sessions: SessionEvent[]; eeg: EegBandPower[] }, e: SimEvent): void {
  if (e.topic === 'sessions') batch.sessions.push(e.event);
  else batch.eeg.push(e.event);
}
