import type { TopicKey } from '../../schemas/catalogue';
import type { SessionEvent } from '../../schemas/types';
import type { KeyedProcessor, Emission } from '../keyed';
import {
  deserializeState,
  initialState,
  isEnded,
  serializeState,
  step,
  type FatigueInput,
  type FatigueOutput,
  type FatigueState,
} from './index';

/**
 * The fatigue model as the runner's KeyedProcessor: input topic → model input kind, model outputs →
 * emissions (scores and alerts to their topics, late telemetry to the late topic).
 * Input order for ties: telemetry first, then session events (a SessionEnded at ts T must follow the
 * frames stamped T, or they would count as arriving after the end; a SessionStarted precedes its
 * first frames by event time anyway), then commands.
 */
const kindOf: Partial<Record<TopicKey, FatigueInput['kind']>> = {
  sessions: 'session',
  eeg: 'eeg',
  face: 'face',
  vehicle: 'vehicle',
  game: 'game',
  commands: 'command',
};

const emissions = (outputs: FatigueOutput[]): Emission[] =>
  outputs.map((o) =>
    o.kind === 'late' ? { late: true as const } : { topic: o.kind === 'score' ? 'scores' : 'alerts', value: o.event },
  );

export const fatigueProcessor: KeyedProcessor<FatigueState> = {
  name: 'fatigue',
  inputs: ['eeg', 'face', 'vehicle', 'game', 'sessions', 'commands'],
  initial: (session) => initialState(session),
  step(state, topic, value) {
    const kind = kindOf[topic];
    if (!kind || kind === 'tick') throw new Error(`fatigue processor: no input kind for topic ${topic}`);
    const r = step(state, { kind, event: value } as FatigueInput);
    return { state: r.state, outputs: emissions(r.outputs) };
  },
  tick(state, ts) {
    const r = step(state, { kind: 'tick', ts });
    return { state: r.state, outputs: emissions(r.outputs) };
  },
  tickEveryMs: 5_000,
  isBarrier: (topic, value) => topic === 'sessions' && (value as SessionEvent).event.type === 'SessionEnded',
  finished: isEnded,
  serialize: serializeState,
  deserialize: (json) => deserializeState(json),
};
