import type {
  AlertEvent,
  AlertReason,
  Command,
  EegBandPower,
  FaceFrame,
  FatigueScored,
  GameEvent,
  SessionEvent,
  VehicleFrame,
} from '../../schemas/types';
import { VigilError } from '../../core/errors';
import { fatigueV1, type FatigueModelConfig } from './config';
import { initialLevels, type LevelState } from './levels';
import { emptyMoments, type Moments } from './scoring';

// ───────────────────────────── inputs and outputs ─────────────────────────────

/** Telemetry: advances the session's watermark; may be late. */
export type TelemetryInput =
  | { kind: 'face'; event: FaceFrame }
  | { kind: 'vehicle'; event: VehicleFrame }
  | { kind: 'eeg'; event: EegBandPower }
  | { kind: 'game'; event: GameEvent };

/**
 * What the runner feeds the processor for one session (the session's events from every input topic,
 * in the order it consumed them), plus `tick`: the runner's event-time clock for idle eviction (the
 * highest `ts` it has seen on the partition, never the wall clock). A tick never advances a session's
 * watermark; it flushes and ends the session when no telemetry came for `idleEvictMs` of that time.
 */
export type FatigueInput =
  | TelemetryInput
  | { kind: 'session'; event: SessionEvent }
  | { kind: 'command'; event: Command }
  | { kind: 'tick'; ts: number };

/**
 * What the processor emits: scores (to fatigue.scores.v1), alert life-cycle events (to
 * fatigue.alerts.v1), and late telemetry handed back as received (to the late topic and its counter).
 */
export type FatigueOutput =
  | { kind: 'score'; event: FatigueScored }
  | { kind: 'alert'; event: AlertEvent }
  | { kind: 'late'; input: TelemetryInput }
  /** A copy of telemetry already in the reorder buffer (a producer's resend): dropped, only counted. */
  | { kind: 'duplicate'; input: TelemetryInput };

// ───────────────────────────── state ─────────────────────────────

/**
 * The fields of an event the model uses, waiting in the reorder buffer (ts > watermark). Telemetry
 * carries `id`, a 32-bit hash of its `event_id` (eventIdHash): with the source and ts it tells a
 * producer's resend from another event (absent in snapshots written before it existed).
 */
export type Sample =
  /** face: detected, eye closure, mouth open */
  | { source: 'f'; ts: number; faceDetected: boolean; eyeClosure: number | null; mouthOpen: number | null; id?: number }
  /** vehicle: speed, lane offset */
  | { source: 'v'; ts: number; speedKmh: number; laneOffsetM: number | null; id?: number }
  /** EEG: the frame's (theta+alpha)/beta over good channels, null when no channel was good */
  | { source: 'e'; ts: number; eegRatio: number | null; id?: number }
  /** game: what it means to the model */
  | { source: 'g'; ts: number; gameKind: 'departure' | 'lapse' | 'stimulus' | 'other'; id?: number }
  /** AcknowledgeAlert: the alert it names, who, and the command's tenant */
  | { source: 'c'; ts: number; alert: string; by: string; tenant: string };

/** Aggregates of one hop-sized slice [k * hop, (k + 1) * hop) of event time. A window sums its slices. */
export interface Bucket {
  k: number;
  /** face frames (presence of the face stream) */
  faceN: number;
  /** face-detected time with a measured eye closure, and the part of it with the eyes closed */
  faceMs: number;
  closedMs: number;
  /** closures that ended in the slice, and those of long-blink length */
  closures: number;
  longClosures: number;
  yawns: number;
  /** vehicle frames plus lane departures (presence of the driving stream) */
  drvN: number;
  /** lane offsets while speed > 40 km/h */
  lane: Moments;
  departures: number;
  /** EEG frames (presence), good frames and the sum of their ratios */
  eegN: number;
  eegGoodN: number;
  eegSum: number;
  /** stimulus events (presence of the reaction stream) and lapses */
  stimN: number;
  lapses: number;
}

export interface FaceTrack {
  /** Last face frame: its ts and what it showed (0 nothing measurable, 1 eyes open, 2 eyes closed). */
  lastTs: number | null;
  lastKind: 0 | 1 | 2;
  /** Current eye closure: first and last closed frame, and whether it already raised a microsleep. */
  closureStart: number | null;
  closureLast: number;
  closureMicro: boolean;
  /** Current mouth opening (mouth_open >= 0.6) and whether it was already counted as a yawn. */
  mouthStart: number | null;
  mouthLast: number;
  mouthCounted: boolean;
  /** First frame of the current run of frames without a face. */
  lostSince: number | null;
}

export interface VehicleTrack {
  lastTs: number | null;
  /** First frame of the current run of frames with speed above the face-lost floor. */
  movingSince: number | null;
}

export interface Baseline {
  /** End of the baseline period (session start + 5 min), null before the session has a start. */
  endTs: number | null;
  /** True once a window ended at or after endTs: the values below are then frozen. */
  ready: boolean;
  faceMs: number;
  closedMs: number;
  lane: Moments;
  eeg: Moments;
  /** In use: personal when ready and enough data, the population default otherwise. */
  pb: number;
  b: number;
  /** EEG ratio mean and std, null until ready (and for the whole session if there was too little EEG). */
  eegMean: number | null;
  eegStd: number | null;
}

export interface ActiveAlert {
  id: string;
  reason: AlertReason;
  level: 1 | 2;
  raisedTs: number;
  acknowledged: boolean;
  escalations: number;
  /** Event time at which it clears by itself (microsleep), null when it clears on a condition. */
  clearAt: number | null;
}

/**
 * One session's state: plain JSON (numbers, strings, booleans, arrays, objects), bounded in size
 * (a reorder buffer of the last ~2 s, ~14 slices of 5 s, a few alerts), snapshotted by the runner
 * with `serializeState` to its compacted changelog.
 */
export interface FatigueState {
  v: 1;
  model_version: string;
  session_id: string;
  tenant_id: string | null;
  ended: boolean;
  /** Session start: SessionStarted's ts, or the first telemetry's if it came first. */
  startTs: number | null;
  /** Highest telemetry ts seen; watermark = maxTs − allowed lateness. */
  maxTs: number | null;
  /** Event time of the last thing processed (sample, window or timer), null before the first. */
  clock: number | null;
  /** End of the next window to emit (a multiple of the hop). */
  nextEnd: number | null;
  /** Reorder buffer sorted by ts; entries before `pendingHead` are already processed. */
  pending: Sample[];
  pendingHead: number;
  buckets: Bucket[];
  face: FaceTrack;
  vehicle: VehicleTrack;
  baseline: Baseline;
  levels: LevelState;
  alerts: ActiveAlert[];
}

export const STATE_VERSION = 1;

export function initialState(sessionId: string, config: FatigueModelConfig = fatigueV1): FatigueState {
  return {
    v: STATE_VERSION,
    model_version: config.model_version,
    session_id: sessionId,
    tenant_id: null,
    ended: false,
    startTs: null,
    maxTs: null,
    clock: null,
    nextEnd: null,
    pending: [],
    pendingHead: 0,
    buckets: [],
    face: {
      lastTs: null,
      lastKind: 0,
      closureStart: null,
      closureLast: 0,
      closureMicro: false,
      mouthStart: null,
      mouthLast: 0,
      mouthCounted: false,
      lostSince: null,
    },
    vehicle: { lastTs: null, movingSince: null },
    baseline: {
      endTs: null,
      ready: false,
      faceMs: 0,
      closedMs: 0,
      lane: emptyMoments(),
      eeg: emptyMoments(),
      pb: config.perclosBaselineDefault,
      b: config.sdlpBaselineDefaultM,
      eegMean: null,
      eegStd: null,
    },
    levels: initialLevels(),
    alerts: [],
  };
}

export function compactPending(s: FatigueState): void {
  if (s.pendingHead > 0) {
    s.pending.splice(0, s.pendingHead);
    s.pendingHead = 0;
  }
}

// Snapshot encoding: the state as JSON, except the two arrays that make up most of it (slices and
// the reorder buffer), which travel as tuples instead of objects: half the bytes on the changelog.
type BucketTuple = [number, ...number[]];
export type SampleTuple = [Sample['source'], number, ...(string | number | boolean | null)[]];

const bucketToTuple = (b: Bucket): BucketTuple => [
  b.k,
  b.faceN,
  b.faceMs,
  b.closedMs,
  b.closures,
  b.longClosures,
  b.yawns,
  b.drvN,
  b.lane.n,
  b.lane.mean,
  b.lane.m2,
  b.departures,
  b.eegN,
  b.eegGoodN,
  b.eegSum,
  b.stimN,
  b.lapses,
];

function bucketOf(t: number[]): Bucket {
  const at = (i: number): number => t[i] ?? 0;
  return {
    k: at(0),
    faceN: at(1),
    faceMs: at(2),
    closedMs: at(3),
    closures: at(4),
    longClosures: at(5),
    yawns: at(6),
    drvN: at(7),
    lane: { n: at(8), mean: at(9), m2: at(10) },
    departures: at(11),
    eegN: at(12),
    eegGoodN: at(13),
    eegSum: at(14),
    stimN: at(15),
    lapses: at(16),
  };
}

/** A telemetry tuple ends with the sample's `id` when it has one. */
const withId = (tuple: SampleTuple, id: number | undefined): SampleTuple => (id === undefined ? tuple : [...tuple, id]);
/** The sample's `id` at tuple position `i`, when the tuple has it (spread in, so an absent id stays absent). */
const idAt = (tuple: SampleTuple, i: number): { id?: number } =>
  typeof tuple[i] === 'number' ? { id: tuple[i] as number } : {};

export function sampleToTuple(sample: Sample): SampleTuple {
  switch (sample.source) {
    case 'f':
      return withId(['f', sample.ts, sample.faceDetected, sample.eyeClosure, sample.mouthOpen], sample.id);
    case 'v':
      return withId(['v', sample.ts, sample.speedKmh, sample.laneOffsetM], sample.id);
    case 'e':
      return withId(['e', sample.ts, sample.eegRatio], sample.id);
    case 'g':
      return withId(['g', sample.ts, sample.gameKind], sample.id);
    case 'c':
      return ['c', sample.ts, sample.alert, sample.by, sample.tenant];
  }
}

export function sampleOf(tuple: SampleTuple): Sample {
  const [source, ts, first, second, third] = tuple;
  switch (source) {
    case 'f':
      return {
        source,
        ts,
        faceDetected: first as boolean,
        eyeClosure: second as number | null,
        mouthOpen: third as number | null,
        ...idAt(tuple, 5),
      };
    case 'v':
      return { source, ts, speedKmh: first as number, laneOffsetM: second as number | null, ...idAt(tuple, 4) };
    case 'e':
      return { source, ts, eegRatio: first as number | null, ...idAt(tuple, 3) };
    case 'g':
      return { source, ts, gameKind: first as 'departure' | 'lapse' | 'stimulus' | 'other', ...idAt(tuple, 3) };
    case 'c':
      return { source, ts, alert: first as string, by: second as string, tenant: third as string };
  }
}

/** The snapshot the runner writes to the changelog: compact JSON, `v` first. */
export function serializeState(s: FatigueState): string {
  return JSON.stringify({
    ...s,
    pending: s.pending.slice(s.pendingHead).map(sampleToTuple),
    pendingHead: 0,
    buckets: s.buckets.map(bucketToTuple),
  });
}

/**
 * A state back from its snapshot. Throws `EVENT_INVALID` (not retriable) for a snapshot of another
 * state version or model version: the runner then rebuilds the session from the input topics.
 */
export function deserializeState(json: string, config: FatigueModelConfig = fatigueV1): FatigueState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (cause) {
    throw new VigilError('EVENT_INVALID', 'fatigue state snapshot is not JSON', { cause });
  }
  const s = parsed as (Omit<FatigueState, 'pending' | 'buckets'> & { pending: unknown; buckets: unknown }) | null;
  if (typeof s !== 'object' || s === null || s.v !== STATE_VERSION) {
    throw new VigilError(
      'EVENT_INVALID',
      `fatigue state snapshot has version ${String(s?.v)}, expected ${STATE_VERSION}`,
      {
        details: { v: s?.v },
      },
    );
  }
  if (s.model_version !== config.model_version) {
    throw new VigilError(
      'EVENT_INVALID',
      `fatigue state snapshot is for model ${String(s.model_version)}, expected ${config.model_version}`,
      {
        details: { model_version: s.model_version },
      },
    );
  }
  if (typeof s.session_id !== 'string' || !Array.isArray(s.pending) || !Array.isArray(s.buckets)) {
    throw new VigilError('EVENT_INVALID', 'fatigue state snapshot lacks session_id, pending or buckets');
  }
  return {
    ...s,
    pending: (s.pending as SampleTuple[]).map(sampleOf),
    buckets: (s.buckets as number[][]).map(bucketOf),
  };
}

/** A deep copy (the state is plain JSON). */
export const cloneState = (s: FatigueState): FatigueState => structuredClone(s);

/**
 * True when the state holds nothing worth keeping, so the runner may drop it (changelog tombstone):
 * the session was flushed (SessionEnded or idle eviction), or it never started (only commands or
 * ticks came, which leave a fresh state unchanged: `initialState` gives it back).
 */
export const isEnded = (s: FatigueState): boolean => s.ended || s.startTs === null;
