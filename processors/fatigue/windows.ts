import type { FatigueComponents, FatigueFeatures } from '../../schemas/types';
import { activeAlert, clearAlert, raiseAlert } from './alerts';
import { scoreEventIdOf } from './ids';
import { foldScore } from './levels';
import { addFaceTime } from './samples';
import {
  combineScore,
  drivingSubScore,
  emptyMoments,
  eegSubScore,
  mergeMoments,
  ocularSubScore,
  reactionSubScore,
  stdOf,
  yawnSubScore,
} from './scoring';
import { alignDown, type StepContext } from './step-context';

/**
 * Windows closing (event-time.ts calls `closeWindow` when the watermark reaches a window's end): the
 * baseline frozen at the first window ending at or after its end; the window's 12 slices summed into
 * features, components and a score (a `FatigueScored` output); the level folded (levels.ts) and the
 * level alerts (`drowsy`, `severe`) raised or cleared; the slices no later window reads dropped.
 * A window holding no data at all yields nothing and moves the next end to the next data.
 */

/** Scores the window ending at `end` (if any component is present) and applies levels and alerts. */
export function closeWindow(step: StepContext, end: number, windowLimit: number): void {
  const { state, config } = step;
  const hop = config.hopMs;
  if (!state.baseline.ready && state.baseline.endTs !== null && end >= state.baseline.endTs) freezeBaseline(step);

  const kEnd = end / hop;
  const kStart = kEnd - config.windowMs / hop;
  const kRecent = kEnd - config.silenceMs / hop;
  const faceTrack = state.face;
  const openFace =
    faceTrack.lastTs !== null &&
    faceTrack.lastKind > 0 &&
    faceTrack.lastTs < end &&
    faceTrack.lastTs + config.maxFrameGapMs > end - config.windowMs;

  let faceMs = 0,
    closedMs = 0,
    closures = 0,
    longClosures = 0,
    yawns = 0,
    departures = 0,
    eegGoodN = 0,
    eegSum = 0,
    lapses = 0;
  let faceRecent = false,
    drvRecent = false,
    eegRecent = false,
    stimRecent = false,
    any = openFace;
  const lane = emptyMoments();
  for (const slice of state.buckets) {
    if (slice.k < kStart || slice.k >= kEnd) continue;
    any = true;
    faceMs += slice.faceMs;
    closedMs += slice.closedMs;
    closures += slice.closures;
    longClosures += slice.longClosures;
    yawns += slice.yawns;
    departures += slice.departures;
    mergeMoments(lane, slice.lane);
    eegGoodN += slice.eegGoodN;
    eegSum += slice.eegSum;
    lapses += slice.lapses;
    if (slice.k >= kRecent) {
      faceRecent ||= slice.faceN > 0;
      drvRecent ||= slice.drvN > 0;
      eegRecent ||= slice.eegN > 0;
      stimRecent ||= slice.stimN > 0;
    }
  }

  if (!any) {
    // Nothing in this window: no score, and none until the window holding the next data.
    foldScore(state.levels, end, null, config);
    const next = nextDataTs(step);
    state.nextEnd = Math.max(end + hop, alignDown(config, next ?? windowLimit) + hop);
    prune(step);
    return;
  }

  if (openFace) {
    // The last frame's state lasts until the next frame (after the watermark, so after `end`).
    const from = Math.max(faceTrack.lastTs!, end - config.windowMs);
    const to = Math.min(faceTrack.lastTs! + config.maxFrameGapMs, end);
    faceMs += to - from;
    if (faceTrack.lastKind === 2) closedMs += to - from;
  }

  const base = state.baseline;
  const perclos = faceMs > 0 ? closedMs / faceMs : null;
  const longShare = closures > 0 ? longClosures / closures : null;
  const sdlp = lane.n >= config.sdlpMinSamples ? stdOf(lane) : null;
  const eegRatio = eegGoodN > 0 ? eegSum / eegGoodN : null;
  const eegZ =
    eegRatio !== null && base.eegMean !== null && base.eegStd !== null ? (eegRatio - base.eegMean) / base.eegStd : null;

  const faceSeen = faceRecent && perclos !== null;
  const components: FatigueComponents = {
    ocular: faceSeen ? ocularSubScore(perclos, longShare, base.pb, config) : null,
    driving: drvRecent ? drivingSubScore(sdlp, departures, base.b, config) : null,
    eeg: eegRecent && eegZ !== null ? eegSubScore(eegZ, config) : null,
    reaction: stimRecent ? reactionSubScore(lapses, config) : null,
    yawn: faceSeen ? yawnSubScore(yawns, config) : null,
  };
  const score = combineScore(components, config);
  const before = state.levels.level;
  const level = foldScore(state.levels, end, score, config);

  if (score !== null) {
    const features: FatigueFeatures = {
      perclos,
      long_blink_share: longShare,
      sdlp_m: sdlp,
      lane_departures: departures,
      eeg_ratio: eegRatio,
      eeg_ratio_z: eegZ,
      lapses,
      yawns,
    };
    step.outputs.push({
      kind: 'score',
      event: {
        event_id: scoreEventIdOf(config.model_version, state.session_id, end),
        tenant_id: state.tenant_id ?? '',
        session_id: state.session_id,
        ts: end,
        window_start_ts: end - config.windowMs,
        window_end_ts: end,
        score,
        level,
        components,
        features,
        baseline_ready: base.ready,
        model_version: config.model_version,
      },
    });
  }

  if (level !== before) {
    // drowsy is active while level >= 1, severe while level == 2: clears first, then raises.
    const drowsy = activeAlert(step, 'drowsy');
    const severe = activeAlert(step, 'severe');
    if (severe && level < 2) clearAlert(step, severe, end);
    if (drowsy && level < 1) clearAlert(step, drowsy, end);
    if (!drowsy && level >= 1) raiseAlert(step, 'drowsy', 1, end, score);
    if (!severe && level === 2) raiseAlert(step, 'severe', 2, end, score);
  }

  state.nextEnd = end + hop;
  prune(step);
}

/** Freezes the baseline: personal values where there was enough data, the defaults otherwise. */
function freezeBaseline(step: StepContext): void {
  const { state, config } = step;
  const base = state.baseline;
  // The last face frame's state lasts until the next frame, which comes at or after the end.
  const faceTrack = state.face;
  if (faceTrack.lastTs !== null && faceTrack.lastKind > 0 && base.endTs !== null && faceTrack.lastTs < base.endTs) {
    addFaceTime(
      step,
      faceTrack.lastTs,
      Math.min(faceTrack.lastTs + config.maxFrameGapMs, base.endTs),
      faceTrack.lastKind === 2,
      false,
    );
  }
  base.ready = true;
  if (base.faceMs >= config.baselineMinFaceMs)
    base.pb = Math.min(config.perclosBaselineMax, base.closedMs / base.faceMs);
  if (base.lane.n >= config.baselineMinSdlpSamples) base.b = stdOf(base.lane);
  if (base.eeg.n >= config.baselineMinEegFrames) {
    base.eegMean = base.eeg.mean;
    base.eegStd = Math.max(config.eegStdFloor, stdOf(base.eeg));
  }
  base.lane = emptyMoments();
  base.eeg = emptyMoments();
}

/** Earliest event time of data not yet in any emitted window: slices kept, the open face frame, the buffer. */
function nextDataTs(step: StepContext): number | null {
  const state = step.state;
  let t: number | null = state.buckets.length > 0 ? state.buckets[0]!.k * step.config.hopMs : null;
  const faceTrack = state.face;
  if (faceTrack.lastTs !== null && faceTrack.lastKind > 0 && (t === null || faceTrack.lastTs < t)) t = faceTrack.lastTs;
  const head = state.pendingHead < state.pending.length ? state.pending[state.pendingHead]!.ts : null;
  if (head !== null && (t === null || head < t)) t = head;
  return t;
}

/** Drops the slices no window still to emit will read. */
function prune(step: StepContext): void {
  const state = step.state;
  const minK = (state.nextEnd! - step.config.windowMs) / step.config.hopMs;
  let n = 0;
  while (n < state.buckets.length && state.buckets[n]!.k < minK) n++;
  if (n > 0) state.buckets.splice(0, n);
}
