import type { EegBandPower } from '../../schemas/types';
import { MAX_ESCALATIONS_PER_STEP } from './alerts';
import { fatigueV1, type FatigueModelConfig } from './config';
import { onCommand, onSessionEvent, onTelemetry, onTick } from './inputs';
import { cloneState, type FatigueInput, type FatigueOutput, type FatigueState } from './state';
import type { StepContext } from './step-context';

/**
 * The fatigue processor (docs/design.md §4 and §5): pure and deterministic. No clock, no I/O, no
 * randomness: time is the events' `ts`, ids are hashes, so a replay of the same inputs gives
 * byte-identical outputs.
 *
 * Event time, per session:
 * - watermark = highest telemetry ts seen − 2 s. Telemetry waits in a reorder buffer until the
 *   watermark reaches it, then is processed in ts order (ties in arrival order), so out-of-order
 *   delivery within the allowed lateness changes nothing.
 * - Late: a telemetry event with ts <= the watermark at its arrival. Everything up to the watermark
 *   has been processed and windows up to it are final, so it can no longer be put in order; it is
 *   returned as `{ kind: 'late' }` for the late topic. Telemetry fed to an ended state is late too
 *   (the live runner and Replay drop an ended state at once: a later record of the same id, from its
 *   owner, starts a new life of the session, so a device resuming after idle eviction is monitored).
 * - Windows: [end − 60 s, end) with `end` a multiple of 5 s in epoch ms, from the first end after the
 *   session start; a window is emitted when the watermark reaches its end. Samples, window ends and
 *   alert timers (escalation, microsleep clearing) are processed in one event-time order (at equal
 *   times: window, then timer, then sample), so outputs do not depend on how topics interleave.
 * - Session events and commands never move the watermark. An `AcknowledgeAlert` waits in the
 *   reorder buffer like telemetry and takes effect at its own ts, in order with what happened before
 *   it (so an acknowledgement stamped just after an alert was raised finds it); one at or behind the
 *   watermark takes effect at once (commands are never late).
 * - `SessionStarted` sets the session start (the baseline's) unless something was processed already.
 *   `SessionEnded` flushes: all buffered inputs, windows up to the first one that holds the last
 *   telemetry and reaches the end, timers up to the end; then the active alerts clear with reason
 *   `session_ended` and the session is ended (telemetry fed to it later is late). A `tick` does the same for a
 *   session whose newest telemetry is `idleEvictMs` older than the tick.
 * - Windows holding no data at all (a gap in the telemetry) are skipped: they would have no score.
 *
 * Features (kept per 5 s slice, so a telemetry event costs O(1) and a window sums 12 slices):
 * - A face frame's state (face seen with an eye_closure; closed when >= 0.8) lasts until the next
 *   frame, at most 250 ms (drop-outs count as neither); PERCLOS = closed time / face time.
 * - An eye closure runs from its first closed frame to the first frame that is not closed (or the
 *   last closed frame + 250 ms across a drop-out) and counts in the window holding the frame that
 *   ended it. Mouth openings likewise; a yawn counts once, when the opening reaches 1.5 s.
 * - SDLP: population std-dev of lane_offset_m over frames with speed > 40 km/h (>= 10 of them).
 * - Presence (10 s silence rule): ocular and yawn need face frames, driving vehicle frames or lane
 *   departures, eeg EEG frames, reaction stimulus events (shown, response, missed); collisions count
 *   for nothing. A component is also missing when nothing of it was measurable over the window:
 *   ocular and yawn without any face time, eeg without a good frame or without a baseline. A present
 *   component's unmeasurable term counts 0 (driving with no SDLP: departures only).
 *
 * Alerts (see `config.ts` for the numbers):
 * - `drowsy` (level 1) is active while the level is >= 1 and `severe` (level 2) while it is 2; a jump
 *   from level 0 to 2 raises both. They clear (`recovered`) when the level drops below theirs.
 * - `microsleep` (level 2): raised by an eye closure reaching 1 s; clears 60 s after the end of the
 *   last microsleep (another microsleep meanwhile keeps it active).
 * - `face_lost` (level 1): frames without a face for >= 5 s while the vehicle moves (speed > 10 km/h,
 *   from a vehicle frame at most 10 s old); clears at the next frame with a face.
 * - Unacknowledged level-2 alerts escalate at raise + 30 s, + 60 s, ...; `AcknowledgeAlert` naming an
 *   active, unacknowledged alert of the session (same tenant) emits `AlertAcknowledged` and stops
 *   the escalation; any other acknowledgement is ignored.
 *
 * Where each part lives: this module turns an input into a sample or a call and composes the rest;
 * inputs.ts (each input kind: lateness, reorder buffer, session start and end, idle ticks),
 * event-time.ts (the one event-time order of samples, windows and timers), samples.ts (features per
 * slice, baseline, face and vehicle tracks), windows.ts (baseline freeze, window scores, level
 * alerts), alerts.ts (alert life cycle, acknowledgements, escalation timers and budget),
 * step-context.ts (what a step shares with them).
 */

export interface StepResult {
  state: FatigueState;
  outputs: FatigueOutput[];
}

/**
 * The hot path: folds one input into the session state and returns the outputs it causes. The state
 * is owned by the processor: it is updated in place and returned (no copy per event, O(1) amortised
 * per telemetry event). Snapshot it with `serializeState`, or use `decide`/`evolve` for copies.
 */
export function step(state: FatigueState, input: FatigueInput, config: FatigueModelConfig = fatigueV1): StepResult {
  const outputs: FatigueOutput[] = [];
  const context: StepContext = { state, config, outputs, escalationsLeft: MAX_ESCALATIONS_PER_STEP };
  switch (input.kind) {
    case 'face': {
      const frame = input.event;
      onTelemetry(context, input, {
        source: 'f',
        ts: frame.ts,
        faceDetected: frame.face_detected,
        eyeClosure: frame.eye_closure,
        mouthOpen: frame.mouth_open,
      });
      break;
    }
    case 'vehicle': {
      const frame = input.event;
      onTelemetry(context, input, {
        source: 'v',
        ts: frame.ts,
        speedKmh: frame.speed_kmh,
        laneOffsetM: frame.lane_offset_m,
      });
      break;
    }
    case 'eeg':
      onTelemetry(context, input, { source: 'e', ts: input.event.ts, eegRatio: eegRatioOf(input.event, config) });
      break;
    case 'game': {
      const game = input.event.event;
      const gameKind =
        game.type === 'LaneDeparture'
          ? 'departure'
          : game.type === 'StimulusMissed' || (game.type === 'StimulusResponse' && game.reaction_ms >= config.lapseMs)
            ? 'lapse'
            : game.type === 'StimulusShown' || game.type === 'StimulusResponse'
              ? 'stimulus'
              : 'other';
      onTelemetry(context, input, { source: 'g', ts: input.event.ts, gameKind });
      break;
    }
    case 'session':
      onSessionEvent(context, input.event);
      break;
    case 'command':
      onCommand(context, input.event);
      break;
    case 'tick':
      onTick(context, input.ts);
      break;
  }
  return { state, outputs };
}

/** `decide(input, state) -> events[]`, the pure shape of a processor: the outputs of one input; `state` is not touched. */
export function decide(
  input: FatigueInput,
  state: FatigueState,
  config: FatigueModelConfig = fatigueV1,
): FatigueOutput[] {
  return step(cloneState(state), input, config).outputs;
}

/** `evolve(state, event)`, the pure shape of a processor: the state after one input, as a new object. */
export function evolve(state: FatigueState, input: FatigueInput, config: FatigueModelConfig = fatigueV1): FatigueState {
  return step(cloneState(state), input, config).state;
}

/**
 * A frame's (theta+alpha)/beta (Jap 2009): the mean over its channels with quality >= 0.5 and a
 * positive beta; null when no channel qualifies.
 */
export function eegRatioOf(frame: EegBandPower, config: FatigueModelConfig = fatigueV1): number | null {
  let sum = 0;
  let n = 0;
  for (const channel of frame.channels) {
    if (channel.quality >= config.eegMinQuality && channel.beta_uv2 > 0) {
      sum += (channel.theta_uv2 + channel.alpha_uv2) / channel.beta_uv2;
      n += 1;
    }
  }
  return n === 0 ? null : sum / n;
}
