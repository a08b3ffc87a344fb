import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Publisher } from '../publisher';
import type { SessionEvent } from '../../schemas/types';
import {
  modalities,
  sessionEvents,
  sessionIdOf,
  profiles,
  type Modality,
  type Profile,
  type SimEvent,
} from './session';

export interface SimulateOptions {
  sessions: number;
  durationMs: number;
  speed: 'realtime' | 'max';
  seed: number;
  profile: Profile | 'mixed';
  tenantId: string;
  /** Event time of the sessions' start (epoch ms). */
  startTs: number;
  /** Telemetry modalities to publish (default: all); the sessions topic is always published. */
  modalities?: readonly Modality[];
}

export type SimTopic = SimEvent['topic'];
/** The topics a simulation writes, in publishing order. */
const simTopics: readonly SimTopic[] = ['sessions', ...modalities];
export type TopicCounts = Record<SimTopic, number>;

export interface SimulationResult {
  sessionIds: string[];
  published: TopicCounts;
}

/** The topics a simulation with these options writes. */
export const topicsOf = (opts: Pick<SimulateOptions, 'modalities'>): SimTopic[] =>
  simTopics.filter((t) => t === 'sessions' || (opts.modalities ?? modalities).includes(t));

/** Simulated time advances in ticks: in real time one 100 ms tick per wall-clock 100 ms; at max speed 5 s ticks. */
const REALTIME_TICK_MS = 100;
const MAX_SPEED_TICK_MS = 5_000;
/**
 * At max speed, the next ticks are generated and queued while earlier ones are in flight (the
 * publisher batches them and applies backpressure); this bounds how far ahead generation runs.
 */
const MAX_TICKS_IN_FLIGHT = 4;
/** Events are handed to the publisher in calls of at most this many per topic. */
const MAX_CALL = 2_000;

const zeroCounts = (): TopicCounts => ({ sessions: 0, eeg: 0, face: 0, vehicle: 0, game: 0 });

const profileOf = (opts: Pick<SimulateOptions, 'profile'>, index: number): Profile =>
  opts.profile === 'mixed' ? profiles[index % profiles.length]! : opts.profile;

const generators = (opts: SimulateOptions) =>
  Array.from({ length: opts.sessions }, (_, index) =>
    sessionEvents({
      seed: opts.seed,
      index,
      tenantId: opts.tenantId,
      startTs: opts.startTs,
      durationMs: opts.durationMs,
      profile: profileOf(opts, index),
      modalities: opts.modalities,
    }),
  );

type Batch = { [K in SimTopic]: Extract<SimEvent, { topic: K }>['event'][] };

/**
 * Drives `opts.sessions` concurrent sessions through the publisher. Realtime paces event time against
 * the wall clock (one batch per 100 ms tick); max publishes as fast as Kafka acknowledges, with the
 * next few ticks generated while earlier ones are in flight. Either way the events are the same for
 * the same options. A tick's SessionStarted events are acknowledged before its telemetry is sent.
 */
export async function runSimulation(
  publisher: Publisher,
  opts: SimulateOptions,
  signal?: AbortSignal,
): Promise<SimulationResult> {
  const gens = generators(opts);
  const pending = gens.map((g) => g.next());
  const published = zeroCounts();
  const wallStart = performance.now();
  const tick = opts.speed === 'realtime' ? REALTIME_TICK_MS : MAX_SPEED_TICK_MS;
  const telemetryTopics = topicsOf(opts).filter((t) => t !== 'sessions');
  // Ticks handed to the publisher and not yet acknowledged, oldest first (at max speed up to MAX_TICKS_IN_FLIGHT).
  const inFlight: Promise<unknown>[] = [];

  const send = async <K extends SimTopic>(topic: K, events: Batch[K]): Promise<void> => {
    const calls: Promise<void>[] = [];
    for (let i = 0; i < events.length; i += MAX_CALL) {
      calls.push(publisher.publish(topic, events.slice(i, i + MAX_CALL) as never));
    }
    await Promise.all(calls);
    published[topic] += events.length;
  };

  for (let simNow = opts.startTs; ; simNow += tick) {
    if (signal?.aborted) break;
    const batch: Batch = { sessions: [], eeg: [], face: [], vehicle: [], game: [] };
    const started: SessionEvent[] = [];
    let live = false;
    for (let i = 0; i < gens.length; i++) {
      let r = pending[i]!;
      while (!r.done && r.value.event.ts <= simNow) {
        const e = r.value;
        if (e.topic === 'sessions' && e.event.event.type === 'SessionStarted') started.push(e.event);
        else (batch[e.topic] as SimEvent['event'][]).push(e.event);
        r = gens[i]!.next();
      }
      pending[i] = r;
      live ||= !r.done;
    }
    if (started.length) {
      // Session starts first, so a consumer never sees a session's frames before it is known.
      await Promise.all(inFlight.splice(0));
      await send('sessions', started);
    }
    const tickDone = Promise.all([...telemetryTopics.map((t) => send(t, batch[t])), send('sessions', batch.sessions)]);
    tickDone.catch(() => {}); // awaited below; this only keeps it from counting as unhandled meanwhile
    inFlight.push(tickDone);
    while (inFlight.length > (opts.speed === 'realtime' ? 0 : MAX_TICKS_IN_FLIGHT)) await inFlight.shift();
    if (!live) break;
    if (opts.speed === 'realtime') {
      const due = wallStart + (simNow + tick - opts.startTs);
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {});
    }
  }
  await Promise.all(inFlight);
  return { sessionIds: Array.from({ length: opts.sessions }, (_, i) => sessionIdOf(opts.seed, i)), published };
}

interface SimulationDigest {
  /** SHA-256 (hex) over the JSON of every generated event, session by session, in generation order. */
  sha256: string;
  events: TopicCounts;
  total: number;
}

/**
 * What `runSimulation` would publish with these options, reduced to a digest: the JSON of each event
 * (with its topic), one per line, sessions in index order. Independent of the wire encoding and of
 * the speed; the same options (seed, start, ...) give the same digest.
 */
export function digestSimulation(opts: SimulateOptions): SimulationDigest {
  const hash = createHash('sha256');
  const events = zeroCounts();
  let total = 0;
  for (const gen of generators(opts)) {
    for (const e of gen) {
      hash.update(JSON.stringify(e));
      hash.update('\n');
      events[e.topic]++;
      total++;
    }
  }
  return { sha256: hash.digest('hex'), events, total };
}
