import type { TopicKey } from '../schemas/catalogue';

/**
 * A keyed, stateful stream processor as the runner sees it: pure functions over one key's (one
 * session's) state. No clock and no I/O: `step` must give the same outputs for the same state and
 * input, so a replay is byte-identical.
 */
export interface KeyedProcessor<S> {
  /** Stable name: consumer group, transactional ids and metrics use it. */
  name: string;
  /** Input topics in tie-break order (records with equal ts are fed in this order). */
  inputs: readonly TopicKey[];
  initial(key: string): S;
  step(state: S, topic: TopicKey, value: unknown): { state: S; outputs: Emission[] };
  /**
   * Optional idle eviction: the runner calls `evict` for a key whose last record was appended
   * `idleAfterMs` before the partition's newest record, by the broker's append time (the records'
   * timestamps on LogAppendTime topics: a clock no device controls, stored with the record, so a
   * replay decides the same). Never by another key's event time: one session's clock cannot end
   * another. `evict` must depend on the key's own state only (e.g. flush up to its own last ts).
   */
  evict?(state: S): { state: S; outputs: Emission[] };
  idleAfterMs?: number;
  /**
   * Records that close a key's event time (e.g. SessionEnded): the runner feeds them only after the
   * other inputs have delivered everything written before them (see PartitionMerger barriers).
   */
  isBarrier?(topic: TopicKey, value: unknown): boolean;
  /**
   * Inputs that flow continuously while a key lives (telemetry): the live runner's caught-up flags
   * of these cover only records appended before them (PartitionMerger, Claims). The quiet inputs
   * (session events, commands) keep flags that cover everything: a claim on them would hold every
   * record until their next end-offset check.
   */
  streams?: readonly TopicKey[];
  /** True once a key's state can be dropped (its changelog entry becomes a tombstone). */
  finished(state: S): boolean;
  serialize(state: S): string;
  deserialize(json: string): S;
  /**
   * Optional binary form of the state for the changelog (processors/snapshot-codec.ts); without it
   * the `serialize` text is stored. `decode(encode(s))` must step exactly as `s` does (replays are
   * byte-identical across restores). An `encode` that throws falls back to the text for that snapshot.
   */
  stateCodec?: { encode(state: S): Buffer; decode(bytes: Buffer): S };
}

/**
 * What a step asks the runner to write or count: an event to a catalogue topic, the input to the late
 * topic, or nothing but a count (`duplicate`: the input was a copy of one the processor already held).
 */
export type Emission = { topic: TopicKey; value: { session_id: string } } | { late: true } | { duplicate: true };
