/**
 * The fatigue processor's public API (model `fatigue-v1`, docs/design.md §5). Pure: the runner owns
 * Kafka, the changelog and the late topic, and calls only what is exported here. Per session:
 *
 *   const state = snapshot ? deserializeState(snapshot) : initialState(sessionId);
 *   const { outputs } = step(state, { kind: 'face', event });      // the state is updated in place
 *   for (const o of outputs) {
 *     if (o.kind === 'score') produce(scoresTopic, o.event);       // FatigueScored
 *     else if (o.kind === 'alert') produce(alertsTopic, o.event);  // AlertEvent
 *     else produce(lateTopic, bytesOf(o.input));                   // late telemetry, as received
 *   }
 *   changelog(sessionId, isEnded(state) ? null : serializeState(state)); // null: tombstone
 *
 * Inputs are `{ kind: 'face' | 'vehicle' | 'eeg' | 'game' | 'session' | 'command', event }` in the
 * order the runner's event-time merge releases them, and `{ kind: 'tick', ts }` with the partition's
 * event time (highest ts seen on it) for idle eviction: call it for each live session now and then.
 * `decide(input, state)` and `evolve(state, input)` are the copying forms of `step`.
 */
export { fatigueV1, configProblems, type FatigueModelConfig } from './config';
export { step, decide, evolve, eegRatioOf, type StepResult } from './processor';
export {
  initialState,
  serializeState,
  deserializeState,
  cloneState,
  isEnded,
  STATE_VERSION,
  type FatigueInput,
  type FatigueOutput,
  type TelemetryInput,
  type FatigueState,
} from './state';
export { alertIdOf, scoreEventIdOf, uuidFrom } from './ids';
