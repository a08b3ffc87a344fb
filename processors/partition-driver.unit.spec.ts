import type { KafkaMessage } from 'kafkajs';
import { VigilError } from '../core/errors';
import { topicNames, type TopicKey } from '../schemas/catalogue';
import { fatigueProcessor } from './fatigue/keyed-processor';
import { SESSION, T0, drive, merge, sessionEnded, sessionStarted } from './fatigue/testing';
import type { FatigueInput } from './fatigue/state';
import type { KeyedProcessor } from './keyed';
import { PartitionDriver, type DriveOutput, type DriverRecord } from './partition-driver';
import { liveDriver } from './restore';
import { decodeSnapshot } from './snapshot-codec';
import { Replay, type ReplayOutput } from './rescore/replay';

/**
 * The pure partition driver (docs/design.md §4), given records → then outputs. A small counting
 * processor shows the rules; the fatigue processor shows that the live runner's configuration of the
 * driver and rescore's Replay give the same bytes for the same input.
 */
interface Counter {
  session: string;
  count: number;
  lastTs: number;
  ended: boolean;
}
type Input = { session_id: string; tenant_id: string; ts: number; type?: string; late?: boolean };

const counter: KeyedProcessor<Counter> = {
  name: 'counter',
  inputs: ['face', 'sessions'],
  initial: (session) => ({ session, count: 0, lastTs: 0, ended: false }),
  step(state, topic, value) {
    const v = value as Input;
    if (v.late) return { state, outputs: [{ late: true }] };
    const next = { ...state, count: state.count + 1, lastTs: v.ts, ended: v.type === 'SessionEnded' };
    return {
      state: next,
      outputs: [{ topic: 'scores', value: { session_id: state.session, n: next.count, ts: v.ts } }],
    };
  },
  evict: (state) => ({
    state: { ...state, ended: true },
    outputs: [{ topic: 'alerts', value: { session_id: state.session, evictedAt: state.lastTs } }],
  }),
  idleAfterMs: 60_000,
  isBarrier: (topic, value) => topic === 'sessions' && (value as Input).type === 'SessionEnded',
  finished: (state) => state.ended,
  serialize: (state) => JSON.stringify(state),
  deserialize: (json) => JSON.parse(json) as Counter,
};

/** A record of `session` (tenant-1 unless told) at event time `ts`, appended at `appendTs` (default ts). */
const rec = (
  offset: number,
  session: string,
  ts: number,
  o: Partial<Input> & { appendTs?: number } = {},
): DriverRecord<undefined> => {
  const { appendTs, ...fields } = o;
  return {
    offset: String(offset),
    session,
    ts,
    appendTs: appendTs ?? ts,
    meta: undefined,
    value: { session_id: session, tenant_id: 'tenant-1', ts, ...fields },
  };
};

const counterDriver = (ownerMemoryMs?: number) =>
  new PartitionDriver<Counter, undefined>(counter, { partition: 3, ownerMemoryMs });

/** Every input at its end (as the live runner's freshness check finds them), then one pass. */
function settle(driver: PartitionDriver<Counter, undefined>) {
  for (const topic of counter.inputs) driver.markCaughtUp(topic);
  return driver.drive();
}

const valuesOf = (out: DriveOutput<unknown>) => out.events.map((e) => [e.topic, e.value]);
const tsOf = (out: DriveOutput<unknown>) => out.events.map((e) => (e.value as unknown as { ts: number }).ts);

describe('partition driver', () => {
  it('given records at or below the session’s applied offset again (a re-read), then they are skipped', () => {
    const driver = counterDriver();
    driver.push('face', [rec(0, 'a', 1_000), rec(1, 'a', 2_000)], true);
    expect(settle(driver).stepped).toBe(2);
    driver.push('face', [rec(0, 'a', 1_000), rec(1, 'a', 2_000), rec(2, 'a', 3_000)], true);
    const out = settle(driver);
    expect([out.released, out.stepped]).toEqual([3, 1]);
    expect(valuesOf(out)).toEqual([['scores', { session_id: 'a', n: 3, ts: 3_000 }]]);
  });

  it('given a restored snapshot, then the records it already applied are skipped and counting goes on', () => {
    const first = counterDriver();
    first.push('face', [rec(0, 'a', 1_000), rec(1, 'a', 2_000)], true);
    settle(first);
    const snapshot = decodeSnapshot(first.snapshot('a')!);
    expect(snapshot).toMatchObject({ p: 3, applied: { face: '1' }, owner: 'tenant-1', seenAt: 2_000 });
    const second = counterDriver();
    second.restore('a', snapshot);
    second.push('face', [rec(1, 'a', 2_000), rec(2, 'a', 3_000)], true);
    expect(valuesOf(settle(second))).toEqual([['scores', { session_id: 'a', n: 3, ts: 3_000 }]]);
  });

  it('given two inputs, then records are stepped in event-time order, held until the slower input passes them', () => {
    const driver = new PartitionDriver<Counter, undefined>(counter, { partition: 0 });
    driver.push('face', [rec(0, 'a', 1_000), rec(1, 'a', 3_000)], false);
    expect(driver.drive().stepped).toBe(0); // `sessions` may still deliver something earlier
    driver.push('sessions', [rec(0, 'a', 2_000, { type: 'SessionStarted' })], false);
    expect(tsOf(driver.drive())).toEqual([1_000]);
    driver.markCaughtUp('sessions');
    driver.markCaughtUp('face');
    expect(tsOf(driver.drive())).toEqual([2_000, 3_000]);
  });

  it('given sessions quiet for the idle time of append time, then the append-time tick evicts them in order, each at its own last ts, and spares the active one', () => {
    const driver = counterDriver();
    driver.push('face', [rec(0, 'a', 1_000), rec(1, 'b', 2_000), rec(2, 'c', 3_000)], true);
    settle(driver);
    // c goes on; a year-ahead event time on c does not move the clock: only append time does
    driver.push('face', [rec(3, 'c', 9e12, { appendTs: 30_000 })], true);
    expect(settle(driver).events.filter((e) => e.topic === 'alerts')).toEqual([]);
    driver.push('face', [rec(4, 'c', 9e12 + 1, { appendTs: 62_500 })], true);
    const out = settle(driver);
    expect(valuesOf(out).filter(([t]) => t === 'alerts')).toEqual([
      ['alerts', { session_id: 'a', evictedAt: 1_000 }],
      ['alerts', { session_id: 'b', evictedAt: 2_000 }],
    ]);
    expect(out.finished).toEqual(['a', 'b']);
    expect([...out.touched].sort()).toEqual(['a', 'b', 'c']);
    expect(driver.openSessions).toBe(1);
  });

  it('given a SessionEnded, then the finished session is reported, its state dropped and only its owner kept: another tenant is refused, the owner starts a new life', () => {
    const driver = counterDriver();
    driver.push('face', [rec(0, 'a', 1_000)], true);
    driver.push('sessions', [rec(0, 'a', 2_000, { type: 'SessionEnded' })], true);
    const ended = settle(driver);
    expect(ended.finished).toEqual(['a']);
    expect(driver.openSessions).toBe(0);
    expect(decodeSnapshot(driver.snapshot('a')!)).toEqual({
      p: 3,
      applied: { face: '0', sessions: '0' },
      owner: 'tenant-1',
      seenAt: 2_000,
    });
    driver.push('face', [rec(1, 'a', 3_000, { tenant_id: 'tenant-2' }), rec(2, 'a', 4_000)], true);
    const later = settle(driver);
    expect(later.refused.map((r) => [r.record.offset, r.error.code])).toEqual([['1', 'TENANT_MISMATCH']]);
    expect(valuesOf(later)).toEqual([['scores', { session_id: 'a', n: 1, ts: 4_000 }]]);
  });

  it('given an ended session quiet for the owner memory, then it is forgotten (a tombstone) and its id is free again', () => {
    const driver = counterDriver(10_000);
    driver.push('sessions', [rec(0, 'a', 1_000, { type: 'SessionEnded' })], true);
    settle(driver);
    driver.push('face', [rec(0, 'b', 20_000)], true);
    const out = settle(driver);
    expect(out.touched.has('a')).toBe(true);
    expect(driver.snapshot('a')).toBeNull();
    driver.push('face', [rec(1, 'a', 21_000, { tenant_id: 'tenant-2' })], true);
    expect(settle(driver).refused).toEqual([]);
  });

  it('given a poison record and a late one, then the poison is refused in place and the late one handed back', () => {
    const driver = counterDriver();
    const poison = new VigilError('EVENT_UNDECODABLE', 'not avro');
    driver.push(
      'face',
      [
        rec(0, 'a', 1_000),
        { offset: '1', session: 'a', ts: 1_000, appendTs: 1_000, meta: undefined, poison },
        rec(2, 'a', 900, { late: true }),
      ],
      true,
    );
    const out = settle(driver);
    expect(out.refused).toEqual([expect.objectContaining({ error: poison })]);
    expect(out.late.map((r) => r.offset)).toEqual(['2']);
    expect(out.stepped).toBe(2);
  });

  it('given the same input, then the live runner’s driver and rescore’s Replay give byte-identical output whatever the batches', () => {
    const topicOf: Record<string, TopicKey> = {
      face: 'face',
      vehicle: 'vehicle',
      eeg: 'eeg',
      game: 'game',
      session: 'sessions',
    };
    const sessionB = (x: FatigueInput): FatigueInput =>
      x.kind === 'tick' ? x : ({ ...x, event: { ...x.event, session_id: 'session-b' } } as FatigueInput);
    const inputs = [
      ...merge([sessionStarted(T0)], drive({ from: T0, durationMs: 120_000, seed: 7, fatigue: (t) => t / 60_000 }), [
        sessionEnded(T0 + 120_000),
      ]),
      ...merge([sessionStarted(T0)], drive({ from: T0, durationMs: 200_000, seed: 8 })).map(sessionB),
    ];
    const perTopic = new Map<
      TopicKey,
      { offset: string; session: string; ts: number; appendTs: number; value: unknown }[]
    >();
    for (const x of inputs) {
      if (x.kind === 'tick') continue;
      const list = perTopic.get(topicOf[x.kind]!) ?? perTopic.set(topicOf[x.kind]!, []).get(topicOf[x.kind]!)!;
      list.push({
        offset: String(list.length),
        session: x.event.session_id,
        ts: x.event.ts,
        appendTs: x.event.ts + 30,
        value: x.event,
      });
    }
    const bytesPerSession = (events: { value: { session_id: string } }[]) => {
      const out = new Map<string, string[]>();
      for (const e of events)
        (out.get(e.value.session_id) ?? out.set(e.value.session_id, []).get(e.value.session_id)!).push(
          JSON.stringify(e),
        );
      return out;
    };

    // live: the runner's driver (offsets by topic name, Kafka messages as meta), batches of 64, each
    // batch's caught-up flag as kafkajs gives it, then a freshness check marking every input caught up
    const live = liveDriver(fatigueProcessor, topicNames('test'), 0);
    live.markCaughtUp('commands'); // nothing to read there: caught up from the start, as restored
    const liveEvents: DriveOutput<KafkaMessage>['events'] = [];
    for (let i = 0, more = true; more; i += 64) {
      more = false;
      for (const [topic, records] of perTopic) {
        const batch = records.slice(i, i + 64).map((r) => ({ ...r, meta: { offset: r.offset } as KafkaMessage }));
        if (batch.length) live.push(topic, batch, i + 64 >= records.length);
        if (i + 64 < records.length) more = true;
        liveEvents.push(...live.drive().events);
      }
    }
    for (const topic of fatigueProcessor.inputs) live.markCaughtUp(topic);
    liveEvents.push(...live.drive().events);

    // replay: batches of 500 per topic, then finish
    const replayed: ReplayOutput[] = [];
    const replay = new Replay(
      fatigueProcessor,
      (o) => replayed.push(o),
      () => ['commands'],
    );
    for (const [topic, records] of perTopic)
      for (let i = 0; i < records.length; i += 500) replay.push(0, topic, records.slice(i, i + 500));
    replay.finish();

    const liveBytes = bytesPerSession(liveEvents.map(({ topic, value }) => ({ topic, value })));
    expect(liveBytes.get(SESSION)!.length).toBeGreaterThan(20);
    expect(liveBytes.get('session-b')!.length).toBeGreaterThan(20);
    expect(bytesPerSession(replayed)).toEqual(liveBytes);
  });
});
