import { VigilError } from '../core/errors';
import type { TopicKey } from '../schemas/catalogue';
import type { KeyedProcessor } from './keyed';
import { PartitionMerger, mergeKeyOf } from './merge';
import { encodeSnapshot, type SessionSnapshot } from './snapshot-codec';

/**
 * The processing of one partition number, pure: no Kafka, no I/O, no wall clock (docs/design.md §4).
 * The live ProcessorRunner and `vigil rescore`'s Replay both feed their records through it, so they
 * agree by construction:
 * - records are merged per session in event time (PartitionMerger: by (ts, topic order), SessionEnded
 *   as a barrier), per (session, tenant), so another tenant's records cannot reorder the owner's;
 * - a released record is refused when it is poison (the caller's decode or rule check) or names a
 *   session another tenant owns (the owner: `session_owners` when the caller claimed it, else the
 *   tenant of the session's first applied record; remembered after the session ended);
 * - a record at or below the session's last applied offset of its topic is skipped (a re-read after a
 *   crash: the offsets are restored from the session's snapshot);
 * - the others are stepped; a session whose state is finished keeps only its owner and offsets, at
 *   once (not at the next commit, whose timing is the wall clock's), so a later record of the id
 *   starts a new life of it however the commits fell;
 * - every TICK_EVERY_MS of the partition's append-time clock (never event time: no session's clock,
 *   forged or not, can end another session), sessions quiet for the processor's `idleAfterMs` are
 *   evicted, and ended sessions quiet for `ownerMemoryMs` are forgotten (their snapshot becomes a
 *   tombstone).
 * Given the same records in the same per-topic order and the same caught-up marks, the outputs are
 * the same, whatever the batch boundaries (the merge's contract).
 */

/** A record handed to the driver, in offset order per topic. `meta` comes back with it (live: the Kafka message). */
export type DriverRecord<M> = {
  offset: string;
  /** The session the record names (its key). */
  session: string;
  /** Event time: the merge's order. A poison record carries its predecessor's, so it is released in place. */
  ts: number;
  /** The record's append time (`message.timestamp`): the partition's clock. */
  appendTs: number;
  meta: M;
} & (
  | {
      value: unknown;
      /** The session's owner claimed in `session_owners`; absent: the first applied record's tenant. */
      owner?: string;
    }
  | { poison: VigilError }
);

/** A record released by the merge, with the input topic it came from. */
type Released<M> = DriverRecord<M> & { topic: TopicKey };

/** What one pass of the driver asks the caller to write or count. */
export interface DriveOutput<M> {
  /** Records the merge released in this pass (stepped, skipped as re-reads, or refused). */
  released: number;
  /** Events in the order the processor produced them; `cause`: the stepped record (absent: an idle eviction). */
  events: { topic: TopicKey; value: { session_id: string }; cause?: Released<M> }[];
  /** Inputs the processor handed back as late (live: copied to the late topic). */
  late: Released<M>[];
  /** Inputs the processor dropped as copies of one it held (a producer's resend; live: counted). */
  duplicates: number;
  /** Poison records and records naming another tenant's session (live: dead-lettered). */
  refused: { record: Released<M>; error: VigilError }[];
  /** Records stepped (re-reads skipped, refused records not counted). */
  stepped: number;
  /** Sessions whose state was dropped in this pass (ended by a record, or evicted): only the owner stays. */
  finished: string[];
  /** Sessions whose snapshot changed in this pass (stepped, evicted or forgotten). */
  touched: Set<string>;
}

interface Session<S> {
  /** null once the session finished: the entry then only remembers its owner and offsets. */
  state: S | null;
  /** Last applied offset per input topic (as a bigint string, keyed by `appliedKeyOf(topic)`). */
  applied: Record<string, string>;
  /** The tenant that owns the session. */
  owner?: string;
  /** Append time of the session's last applied record (idle eviction, owner memory). */
  seenAt?: number;
}

interface PartitionDriverOptions {
  /** The partition number (written into snapshots, so a restore finds its partition). */
  partition: number;
  /** How long (append time) an ended session's owner is remembered (default 7 days). */
  ownerMemoryMs?: number;
  /** The key of a topic in the snapshots' `applied` offsets (live: the topic's name; default: the key). */
  appliedKeyOf?: (topic: TopicKey) => string;
}

/** Idle and owner-memory checks run every this much of a partition's append-time clock. */
const TICK_EVERY_MS = 5_000;
const OWNER_MEMORY_MS = 7 * 24 * 3_600_000;

export class PartitionDriver<S, M> {
  private readonly merger: PartitionMerger<Released<M>>;
  private readonly sessions = new Map<string, Session<S>>();
  /** Highest append time released on this partition, and when sessions were last checked. */
  private clock = -Infinity;
  private lastTickClock = -Infinity;
  private readonly ownerMemoryMs: number;
  private readonly appliedKeyOf: (topic: TopicKey) => string;
  /** The processor's continuous inputs, whose caught-up flags carry claims. */
  private readonly streams: ReadonlySet<TopicKey>;

  constructor(
    private readonly processor: KeyedProcessor<S>,
    private readonly options: PartitionDriverOptions,
  ) {
    this.merger = new PartitionMerger(processor.inputs);
    this.ownerMemoryMs = options.ownerMemoryMs ?? OWNER_MEMORY_MS;
    this.appliedKeyOf = options.appliedKeyOf ?? ((topic) => topic);
    this.streams = new Set(processor.streams ?? []);
  }

  /**
   * Adds one fetched batch of an input topic (offset order); `caughtUp`: the batch reaches its end.
   * For a continuous input (`processor.streams`) a caught-up batch claims the records appended up to
   * its newest one (PartitionMerger, Claims: in one partition, those are all fetched); any other
   * flag covers everything.
   */
  push(topic: TopicKey, records: readonly DriverRecord<M>[], caughtUp: boolean): void {
    const stream = this.streams.has(topic);
    let newestAppend = -Infinity;
    const items = records.map((record) => {
      if (stream && record.appendTs > newestAppend) newestAppend = record.appendTs;
      const value = 'value' in record ? (record.value as { tenant_id?: unknown }) : undefined;
      return {
        topic,
        session: mergeKeyOf(record.session, value?.tenant_id),
        offset: record.offset,
        ts: record.ts,
        appendTs: record.appendTs,
        barrier: value !== undefined && !!this.processor.isBarrier?.(topic, value),
        payload: { ...record, topic },
      };
    });
    this.merger.push(topic, items, caughtUp, stream ? newestAppend : Infinity);
  }

  /**
   * See PartitionMerger.markCaughtUp. `checkedAt`: when the end offsets behind the flag were asked
   * (wall clock, ms); a continuous input's flag claims the records appended before it, any other
   * flag (or one without `checkedAt`: replays) covers everything.
   */
  markCaughtUp(topic: TopicKey, caughtUp = true, asOf?: number, checkedAt?: number): void {
    const claim = checkedAt !== undefined && this.streams.has(topic) ? checkedAt : Infinity;
    this.merger.markCaughtUp(topic, caughtUp, asOf, claim);
  }

  /** See PartitionMerger.forgetCaughtUp. */
  forgetCaughtUp(): void {
    this.merger.forgetCaughtUp();
  }

  /** See PartitionMerger.nextSeq. */
  nextSeq(): number {
    return this.merger.nextSeq();
  }

  /** Per topic, the lowest offset still held by the merge (input offsets must not be committed past it). */
  lowestHeldOffsets(): Map<TopicKey, bigint> {
    return this.merger.lowestHeldOffsets() as Map<TopicKey, bigint>;
  }

  /** Records held by the merge (waiting for the other inputs). */
  get held(): number {
    return this.merger.size;
  }

  /** Sessions held in memory (open or remembering their owner). */
  get size(): number {
    return this.sessions.size;
  }

  /** Sessions open (started, not ended). */
  get openSessions(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.state !== null) n += 1;
    return n;
  }

  /** Puts back a session from its changelog snapshot (before any record of the partition is pushed). */
  restore(session: string, snapshot: SessionSnapshot): void {
    const { applied, state, owner, seenAt } = snapshot;
    const codec = this.processor.stateCodec;
    let restored: S | null = null;
    if (state?.codec === 0) restored = this.processor.deserialize(state.text);
    else if (state?.codec === 1) {
      if (!codec)
        throw new VigilError('EVENT_INVALID', `binary state snapshot for ${this.processor.name}, which has none`);
      restored = codec.decode(state.bytes);
    }
    this.sessions.set(session, { applied, state: restored, owner, seenAt });
  }

  /**
   * The session's changelog value (processors/snapshot-codec.ts: binary envelope, the state in the
   * processor's binary codec when it has one), or null (a tombstone) once it is forgotten.
   */
  snapshot(session: string): Buffer | null {
    const entry = this.sessions.get(session);
    if (!entry) return null;
    const { applied, owner, seenAt } = entry;
    const snapshot: SessionSnapshot = { p: this.options.partition, applied, owner, seenAt };
    if (entry.state !== null) snapshot.state = this.encodeState(entry.state);
    return encodeSnapshot(snapshot);
  }

  private encodeState(state: S): NonNullable<SessionSnapshot['state']> {
    const codec = this.processor.stateCodec;
    if (codec) {
      try {
        return { codec: 1, bytes: codec.encode(state) };
      } catch {
        // e.g. a value outside the binary schema: the text form holds any state
      }
    }
    return { codec: 0, text: this.processor.serialize(state) };
  }

  /** Releases what the merge allows, steps it, then runs the append-time tick when it is due. */
  drive(): DriveOutput<M> {
    const released = this.merger.release();
    const out: DriveOutput<M> = {
      released: released.length,
      events: [],
      late: [],
      duplicates: 0,
      refused: [],
      stepped: 0,
      finished: [],
      touched: new Set(),
    };
    if (released.length === 0) return out;
    for (const { payload: record } of released) this.apply(record, out);
    if (this.clock - this.lastTickClock >= TICK_EVERY_MS) this.tick(out);
    return out;
  }

  private apply(record: Released<M>, out: DriveOutput<M>): void {
    if (record.appendTs > this.clock) this.clock = record.appendTs;
    if ('poison' in record) {
      out.refused.push({ record, error: record.poison });
      return;
    }
    const id = record.session;
    const existing = this.sessions.get(id);
    const tenant = (record.value as { tenant_id?: unknown }).tenant_id;
    // Before the re-read check: another tenant's records come from a merge stream of their own, so
    // they may be released after the owner's records of higher offsets (`applied` is the owner's).
    const owner = existing?.owner ?? record.owner;
    if (owner !== undefined && tenant !== owner) {
      const error = new VigilError(
        'TENANT_MISMATCH',
        `session ${id} belongs to another tenant than ${String(tenant)}`,
        {
          details: { session_id: id, tenant_id: tenant },
        },
      );
      out.refused.push({ record, error });
      return;
    }
    const appliedKey = this.appliedKeyOf(record.topic);
    const applied = existing?.applied[appliedKey];
    if (applied !== undefined && BigInt(record.offset) <= BigInt(applied)) return; // re-read after a crash
    const session: Session<S> = existing ?? { state: null, applied: {} };
    session.owner ??= owner ?? (typeof tenant === 'string' ? tenant : undefined);
    // A session that ended and speaks again (same owner) starts afresh, as a new life of the id.
    const { state, outputs } = this.processor.step(
      session.state ?? this.processor.initial(id),
      record.topic,
      record.value,
    );
    const finished = this.processor.finished(state);
    session.state = finished ? null : state;
    session.applied[appliedKey] = record.offset;
    session.seenAt = record.appendTs;
    this.sessions.set(id, session);
    out.stepped += 1;
    out.touched.add(id);
    if (finished) out.finished.push(id);
    this.collect(outputs, out, record);
  }

  /** Idle eviction and owner memory, on the partition's append-time clock. */
  private tick(out: DriveOutput<M>): void {
    this.lastTickClock = this.clock;
    const idleAfter = this.processor.idleAfterMs ?? Infinity;
    for (const [id, session] of this.sessions) {
      session.seenAt ??= this.clock; // restored from an older snapshot: counts from now
      const quiet = this.clock - session.seenAt;
      if (session.state === null) {
        if (quiet >= this.ownerMemoryMs) {
          this.sessions.delete(id);
          out.touched.add(id);
        }
      } else if (this.processor.evict && quiet >= idleAfter) {
        const { state, outputs } = this.processor.evict(session.state);
        const finished = this.processor.finished(state);
        session.state = finished ? null : state;
        if (outputs.length || finished) out.touched.add(id);
        if (finished) out.finished.push(id);
        this.collect(outputs, out);
      }
    }
  }

  private collect(outputs: ReturnType<KeyedProcessor<S>['step']>['outputs'], out: DriveOutput<M>, cause?: Released<M>) {
    for (const o of outputs) {
      if ('duplicate' in o) out.duplicates++;
      else if (!('late' in o)) out.events.push({ topic: o.topic, value: o.value, cause });
      else if (cause) out.late.push(cause); // an eviction has no input to hand back
    }
  }
}
