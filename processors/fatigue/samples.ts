import { activeAlert, acknowledgeAlert, clearAlert, raiseAlert } from './alerts';
import { addSample, emptyMoments } from './scoring';
import type { Bucket, Sample } from './state';
import type { StepContext } from './step-context';

/**
 * Samples taking effect, one at a time in event-time order (event-time.ts releases them from the
 * reorder buffer): each is folded into its 5 s slice (`Bucket`), the baseline while it is open, and
 * the face and vehicle tracks, in O(1); the face rules raise and clear `microsleep` and `face_lost`
 * here (feature definitions in processor.ts's header). An acknowledgement sample goes to alerts.ts.
 */

export function applySample(step: StepContext, sample: Sample): void {
  switch (sample.source) {
    case 'f':
      return face(step, sample.ts, sample.faceDetected, sample.eyeClosure, sample.mouthOpen);
    case 'v':
      return vehicle(step, sample.ts, sample.speedKmh, sample.laneOffsetM);
    case 'e':
      return eeg(step, sample.ts, sample.eegRatio);
    case 'g':
      return game(step, sample.ts, sample.gameKind);
    case 'c':
      return acknowledgeAlert(step, sample);
  }
}

const emptySlice = (k: number): Bucket => ({
  k,
  faceN: 0,
  faceMs: 0,
  closedMs: 0,
  closures: 0,
  longClosures: 0,
  yawns: 0,
  drvN: 0,
  lane: emptyMoments(),
  departures: 0,
  eegN: 0,
  eegGoodN: 0,
  eegSum: 0,
  stimN: 0,
  lapses: 0,
});

/** The slice holding `ts`, created if need be; null when no window still to emit reads it. */
function sliceAt(step: StepContext, ts: number): Bucket | null {
  const { state, config } = step;
  const k = Math.floor(ts / config.hopMs);
  const slices = state.buckets;
  let i = slices.length;
  while (i > 0 && slices[i - 1]!.k > k) i--;
  if (i > 0 && slices[i - 1]!.k === k) return slices[i - 1]!;
  // Slices before the oldest window still to emit are gone: nothing may be added to them.
  const minK = state.nextEnd === null ? -Infinity : (state.nextEnd - config.windowMs) / config.hopMs;
  if (k < minK) return null;
  const created = emptySlice(k);
  slices.splice(i, 0, created);
  return created;
}

function face(
  step: StepContext,
  ts: number,
  detected: boolean,
  eyeClosure: number | null,
  mouthOpen: number | null,
): void {
  const config = step.config;
  const track = step.state.face;
  const slice = sliceAt(step, ts);
  if (slice) slice.faceN += 1;

  // PERCLOS: the previous frame's state lasted until this frame, at most maxFrameGapMs.
  if (track.lastTs !== null && track.lastKind > 0)
    addFaceTime(step, track.lastTs, Math.min(ts, track.lastTs + config.maxFrameGapMs), track.lastKind === 2);
  const measured = detected && eyeClosure !== null;
  const kind = !measured ? 0 : eyeClosure >= config.eyeClosedThreshold ? 2 : 1;

  // Eye closures: consecutive closed frames; a gap longer than maxFrameGapMs ends the closure.
  if (track.closureStart !== null && ts - track.closureLast > config.maxFrameGapMs)
    endClosure(step, track.closureLast + config.maxFrameGapMs, ts);
  if (kind === 2) {
    if (track.closureStart === null) {
      track.closureStart = ts;
      track.closureMicro = false;
    }
    track.closureLast = ts;
    if (!track.closureMicro && ts - track.closureStart >= config.microsleepMs) microsleep(step, ts);
  } else if (track.closureStart !== null) {
    endClosure(step, ts, ts);
  }

  // Yawns: mouth_open >= 0.6 held >= 1.5 s, counted once per opening when the hold is reached.
  const open = detected && mouthOpen !== null && mouthOpen >= config.yawnMouthThreshold;
  if (track.mouthStart !== null && ts - track.mouthLast > config.maxFrameGapMs)
    endMouth(step, track.mouthLast + config.maxFrameGapMs, ts);
  if (open) {
    if (track.mouthStart === null) {
      track.mouthStart = ts;
      track.mouthCounted = false;
    }
    track.mouthLast = ts;
    if (!track.mouthCounted && ts - track.mouthStart >= config.yawnMinMs) yawn(step, ts);
  } else if (track.mouthStart !== null) {
    endMouth(step, ts, ts);
  }

  // Face lost while moving.
  if (!detected) {
    track.lostSince ??= ts;
    const vehicleTrack = step.state.vehicle;
    const moving =
      vehicleTrack.movingSince !== null && vehicleTrack.lastTs !== null && ts - vehicleTrack.lastTs <= config.silenceMs;
    if (
      moving &&
      ts - Math.max(track.lostSince, vehicleTrack.movingSince!) >= config.faceLostMs &&
      !activeAlert(step, 'face_lost')
    ) {
      raiseAlert(step, 'face_lost', 1, ts, null);
    }
  } else {
    track.lostSince = null;
    const lost = activeAlert(step, 'face_lost');
    if (lost) clearAlert(step, lost, ts);
  }

  track.lastTs = ts;
  track.lastKind = kind;
}

/**
 * Adds [from, to) of face time (closed or not) to the baseline while it is open and, unless
 * `slices` is false (windows.ts freezing the baseline), to the slices.
 */
export function addFaceTime(step: StepContext, from: number, to: number, closed: boolean, slices = true): void {
  const hop = step.config.hopMs;
  for (let t = from; slices && t < to;) {
    const next = Math.min(to, (Math.floor(t / hop) + 1) * hop);
    const slice = sliceAt(step, t);
    if (slice) {
      slice.faceMs += next - t;
      if (closed) slice.closedMs += next - t;
    }
    t = next;
  }
  const base = step.state.baseline;
  if (!base.ready && base.endTs !== null && from < base.endTs) {
    const duration = Math.min(to, base.endTs) - from;
    base.faceMs += duration;
    if (closed) base.closedMs += duration;
  }
}

/** A closure ended at `end` (known at frame `at`): count it, in the slice of `at`. */
function endClosure(step: StepContext, end: number, at: number): void {
  const config = step.config;
  const track = step.state.face;
  const duration = end - track.closureStart!;
  const slice = sliceAt(step, at);
  if (slice) {
    slice.closures += 1;
    if (duration >= config.longBlinkMinMs && duration < config.longBlinkMaxMs) slice.longClosures += 1;
  }
  if (!track.closureMicro && duration >= config.microsleepMs) microsleep(step, at);
  if (track.closureMicro) {
    const alert = activeAlert(step, 'microsleep');
    if (alert) alert.clearAt = at + config.microsleepClearMs;
  }
  track.closureStart = null;
  track.closureMicro = false;
}

function microsleep(step: StepContext, at: number): void {
  step.state.face.closureMicro = true;
  const alert = activeAlert(step, 'microsleep');
  if (alert) alert.clearAt = null;
  else raiseAlert(step, 'microsleep', 2, at, null);
}

function endMouth(step: StepContext, end: number, at: number): void {
  const track = step.state.face;
  if (!track.mouthCounted && end - track.mouthStart! >= step.config.yawnMinMs) yawn(step, at);
  track.mouthStart = null;
}

function yawn(step: StepContext, at: number): void {
  step.state.face.mouthCounted = true;
  const slice = sliceAt(step, at);
  if (slice) slice.yawns += 1;
}

function vehicle(step: StepContext, ts: number, speed: number, laneOffset: number | null): void {
  const config = step.config;
  const slice = sliceAt(step, ts);
  const moving = speed > config.sdlpMinSpeedKmh && laneOffset !== null;
  if (slice) {
    slice.drvN += 1;
    if (moving) addSample(slice.lane, laneOffset);
  }
  const base = step.state.baseline;
  if (moving && !base.ready && base.endTs !== null && ts < base.endTs) addSample(base.lane, laneOffset);
  const track = step.state.vehicle;
  if (track.lastTs !== null && ts - track.lastTs > config.silenceMs) track.movingSince = null;
  track.movingSince = speed > config.faceLostMinSpeedKmh ? (track.movingSince ?? ts) : null;
  track.lastTs = ts;
}

function eeg(step: StepContext, ts: number, ratio: number | null): void {
  const slice = sliceAt(step, ts);
  if (slice) {
    slice.eegN += 1;
    if (ratio !== null) {
      slice.eegGoodN += 1;
      slice.eegSum += ratio;
    }
  }
  const base = step.state.baseline;
  if (ratio !== null && !base.ready && base.endTs !== null && ts < base.endTs) addSample(base.eeg, ratio);
}

function game(step: StepContext, ts: number, kind: 'departure' | 'lapse' | 'stimulus' | 'other'): void {
  const slice = sliceAt(step, ts);
  if (!slice) return;
  if (kind === 'departure') {
    slice.drvN += 1;
    slice.departures += 1;
  } else if (kind === 'lapse') {
    slice.stimN += 1;
    slice.lapses += 1;
  } else if (kind === 'stimulus') {
    slice.stimN += 1;
  }
}
