import type { FatigueModelConfig } from './config';
import type { FatigueOutput, FatigueState } from './state';

/**
 * One step's view of a session, handed by `step` (processor.ts) to the parts of the processor:
 * - `state`: the session's state, updated in place (the step owns it for its duration);
 * - `config`: the model's numbers;
 * - `outputs`: the step's outputs, appended in the event-time order they happen;
 * - `escalationsLeft`: what remains of the step's escalation budget (`MAX_ESCALATIONS_PER_STEP`,
 *   alerts.ts).
 * Nothing else: no clock, no I/O.
 */
export interface StepContext {
  readonly state: FatigueState;
  readonly config: FatigueModelConfig;
  readonly outputs: FatigueOutput[];
  escalationsLeft: number;
}

/** The start of the hop-sized slice holding `ts` (window ends are multiples of the hop). */
export function alignDown(config: FatigueModelConfig, ts: number): number {
  return Math.floor(ts / config.hopMs) * config.hopMs;
}
