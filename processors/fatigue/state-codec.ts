import avro from 'avsc';
import { VigilError } from '../../core/errors';
import { fatigueStateV1 } from '../../schemas/snapshots';
import { fatigueV1, type FatigueModelConfig } from './config';
import { STATE_VERSION, sampleOf, sampleToTuple, type FatigueState, type SampleTuple } from './state';

/**
 * The fatigue state's binary snapshot (Avro, schemas/snapshots.ts `fatigueStateV1`): what the runner
 * writes to the changelog since binary snapshots (docs/design.md §4 "Snapshots"). Lossless: every
 * number round-trips exactly (doubles, and longs for counts), so a restored session steps exactly as
 * the one in memory did. The JSON form (`serializeState`) stays for older changelog entries and tests.
 */
const stateType = avro.Type.forSchema(fatigueStateV1, { omitRecordMethods: true });

type Wire = Omit<FatigueState, 'pending' | 'pendingHead'> & { pending: { s: string; ts: number; x: unknown[] }[] };

export function encodeStateBinary(s: FatigueState): Buffer {
  const { pending, pendingHead, ...rest } = s;
  const wire: Wire = {
    ...rest,
    pending: pending.slice(pendingHead).map((sample) => {
      const [source, ts, ...x] = sampleToTuple(sample);
      return { s: source, ts, x };
    }),
  };
  return stateType.toBuffer(wire);
}

/** Throws `EVENT_INVALID` (not retriable) for bytes that are not a state of this version and model. */
export function decodeStateBinary(bytes: Buffer, config: FatigueModelConfig = fatigueV1): FatigueState {
  let wire: Wire;
  try {
    wire = stateType.fromBuffer(bytes) as Wire;
  } catch (cause) {
    throw new VigilError('EVENT_INVALID', 'fatigue state snapshot is not a binary fatigue state', { cause });
  }
  if (wire.v !== STATE_VERSION || wire.model_version !== config.model_version) {
    throw new VigilError(
      'EVENT_INVALID',
      `fatigue state snapshot is version ${wire.v} of ${wire.model_version}, expected ${STATE_VERSION} of ${config.model_version}`,
      { details: { v: wire.v, model_version: wire.model_version } },
    );
  }
  // Plain objects in the state's own key order (as initialState builds it).
  const w = wire;
  return {
    v: STATE_VERSION,
    model_version: w.model_version,
    session_id: w.session_id,
    tenant_id: w.tenant_id,
    ended: w.ended,
    startTs: w.startTs,
    maxTs: w.maxTs,
    clock: w.clock,
    nextEnd: w.nextEnd,
    pending: w.pending.map((p) => sampleOf([p.s, p.ts, ...p.x] as SampleTuple)),
    pendingHead: 0,
    buckets: w.buckets.map((b) => ({ ...b, lane: { ...b.lane } })),
    face: { ...w.face },
    vehicle: { ...w.vehicle },
    baseline: { ...w.baseline, lane: { ...w.baseline.lane }, eeg: { ...w.baseline.eeg } },
    levels: { ...w.levels },
    alerts: w.alerts.map((a) => ({ ...a })),
  };
}
