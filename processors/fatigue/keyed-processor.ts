import type { TopicKey } from '../../schemas/catalogue';
import type { SessionEvent } from '../../schemas/types';
import type { KeyedProcessor, Emission } from '../keyed';
import {
  fatigueV1,
  deserializeState,
  initialState,
  isEnded,
  serializeState,
  step,
  type FatigueInput,
  type FatigueOutput,
  type FatigueModelConfig,
  type FatigueState,
} from './index';
import { decodeStateBinary, encodeStateBinary } from './state-codec';

/**
 * The fatigue model as the runner's KeyedProcessor: input topic → model input kind, model outputs →
 * emissions (scores and alerts to their topics, late telemetry to the late topic, a resent copy counted).
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
    o.kind === 'late'
      ? { late: true as const }
      : o.kind === 'duplicate'
        ? { duplicate: true as const }
        : { topic: o.kind === 'score' ? 'scores' : 'alerts', value: o.event },
  );

/**
 * The KeyedProcessor of one fatigue model: the live runner uses `fatigue-v1`, `vigil rescore` any
 * model of the registry (models.ts) through the same steps, ticks and barriers.
 */
export function fatigueProcessorOf(config: FatigueModelConfig): KeyedProcessor<FatigueState> {
  return {
    name: 'fatigue',
    inputs: ['eeg', 'face', 'vehicle', 'game', 'sessions', 'commands'],
    streams: ['eeg', 'face', 'vehicle'],
    initial: (session) => initialState(session, config),
    step(state, topic, value) {
      const kind = kindOf[topic];
      if (!kind || kind === 'tick') throw new Error(`fatigue processor: no input kind for topic ${topic}`);
      const r = step(state, { kind, event: value } as FatigueInput, config);
      return { state: r.state, outputs: emissions(r.outputs) };
    },
    // The model's tick ends a session quiet for idleEvictMs of its own event time; MAX_SAFE_INTEGER
    // makes it unconditional: the runner already decided by append time, and flush() uses only the
    // session's own last ts, so the outputs do not depend on when the runner evicts.
    evict(state) {
      const r = step(state, { kind: 'tick', ts: Number.MAX_SAFE_INTEGER }, config);
      return { state: r.state, outputs: emissions(r.outputs) };
    },
    idleAfterMs: config.idleEvictMs,
    isBarrier: (topic, value) => topic === 'sessions' && (value as SessionEvent).event.type === 'SessionEnded',
    finished: isEnded,
    serialize: serializeState,
    deserialize: (json) => deserializeState(json, config),
    stateCodec: { encode: encodeStateBinary, decode: (bytes) => decodeStateBinary(bytes, config) },
  };
}

/** The live fatigue processor (`vigil process`): model `fatigue-v1`. */
export const fatigueProcessor: KeyedProcessor<FatigueState> = fatigueProcessorOf(fatigueV1);
