import { fireAlertTimer, nextAlertTimer } from './alerts';
import { applySample } from './samples';
import { compactPending } from './state';
import type { StepContext } from './step-context';
import { closeWindow } from './windows';

/**
 * The event-time scheduler of the fatigue processor: merges the three things that happen at an event
 * time (buffered samples, window ends, alert timers) into one order, so outputs do not depend on how
 * topics interleave (processor.ts's header). inputs.ts calls it when the watermark moves and when a
 * session is flushed; it advances `state.clock` and hands each item to samples.ts, windows.ts or
 * alerts.ts.
 */

/**
 * Processes, in event-time order, buffered samples with ts <= sampleLimit, window ends <= windowLimit
 * and alert timers <= timerLimit. At equal times: window, then timer, then sample (a window holds
 * samples strictly before its end; a timer fires before what happens at its instant).
 */
export function advance(step: StepContext, sampleLimit: number, windowLimit: number, timerLimit: number): void {
  const state = step.state;
  for (;;) {
    const sample = state.pendingHead < state.pending.length ? state.pending[state.pendingHead]! : null;
    const sampleAt = sample !== null && sample.ts <= sampleLimit ? sample.ts : Infinity;
    const windowAt = state.nextEnd !== null && state.nextEnd <= windowLimit ? state.nextEnd : Infinity;
    const timer = nextAlertTimer(step);
    const timerAt = timer !== null && timer.at <= timerLimit ? timer.at : Infinity;
    if (sampleAt === Infinity && windowAt === Infinity && timerAt === Infinity) break;
    if (windowAt <= timerAt && windowAt <= sampleAt) {
      state.clock = windowAt;
      closeWindow(step, windowAt, windowLimit);
    } else if (timerAt <= sampleAt) {
      state.clock = timerAt;
      fireAlertTimer(step, timer!, timerLimit);
    } else {
      state.clock = sampleAt;
      state.pendingHead += 1;
      applySample(step, sample!);
    }
  }
  if (state.pendingHead > 64 && state.pendingHead * 2 > state.pending.length) compactPending(state);
}
