import avro from 'avsc';
import { VigilError } from '../core/errors';
import { SNAPSHOT_FORMAT_AVRO_V1, sessionSnapshotV1 } from '../schemas/snapshots';

/**
 * A session's changelog value (docs/design.md §4 "Snapshots"): one format byte, then the body.
 * Written: SNAPSHOT_FORMAT_AVRO_V1 + the Avro envelope (schemas/snapshots.ts), the state inside as
 * the processor's binary `stateCodec` (codec 1) or, without one, its `serialize` text (codec 0).
 * Read: that, and the JSON snapshots written before (first byte `{`), so a changelog written by an
 * older version restores as it is; its entries are rewritten in binary as their sessions commit.
 */
export interface SessionSnapshot {
  /** The partition number (a restore puts the session in its partition). */
  p: number;
  /** Last applied offset per input topic (bigint strings). */
  applied: Record<string, string>;
  owner?: string;
  seenAt?: number;
  /** Absent: the session ended (only its owner and offsets are kept). */
  state?: { codec: 0; text: string } | { codec: 1; bytes: Buffer };
}

const JSON_FORMAT = 0x7b; // '{'
const envelope = avro.Type.forSchema(sessionSnapshotV1, { omitRecordMethods: true });

interface Wire {
  p: number;
  applied: Record<string, number>;
  owner: string | null;
  seenAt: number | null;
  codec: number;
  state: Buffer | null;
}

export function encodeSnapshot(s: SessionSnapshot): Buffer {
  const applied: Record<string, number> = {};
  for (const [topic, offset] of Object.entries(s.applied)) applied[topic] = Number(offset);
  const wire: Wire = {
    p: s.p,
    applied,
    owner: s.owner ?? null,
    seenAt: s.seenAt ?? null,
    codec: s.state?.codec ?? 0,
    state: s.state === undefined ? null : s.state.codec === 1 ? s.state.bytes : Buffer.from(s.state.text),
  };
  const body = envelope.toBuffer(wire);
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = SNAPSHOT_FORMAT_AVRO_V1;
  body.copy(out, 1);
  return out;
}

/** Either format; throws `EVENT_INVALID` (not retriable) for anything else. */
export function decodeSnapshot(value: Buffer): SessionSnapshot {
  if (value[0] === JSON_FORMAT) {
    const legacy = JSON.parse(value.toString()) as Omit<SessionSnapshot, 'state'> & { state?: string };
    const { state, ...rest } = legacy;
    return { ...rest, state: state === undefined ? undefined : { codec: 0, text: state } };
  }
  if (value[0] !== SNAPSHOT_FORMAT_AVRO_V1) {
    throw new VigilError('EVENT_INVALID', `changelog value of unknown format ${String(value[0])}`);
  }
  const wire = envelope.fromBuffer(value.subarray(1)) as Wire;
  const applied: Record<string, string> = {};
  for (const [topic, offset] of Object.entries(wire.applied)) applied[topic] = String(offset);
  const snapshot: SessionSnapshot = { p: wire.p, applied };
  if (wire.owner !== null) snapshot.owner = wire.owner;
  if (wire.seenAt !== null) snapshot.seenAt = wire.seenAt;
  if (wire.state !== null)
    snapshot.state = wire.codec === 1 ? { codec: 1, bytes: wire.state } : { codec: 0, text: wire.state.toString() };
  return snapshot;
}
