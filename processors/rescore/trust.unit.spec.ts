import type { TopicKey } from '../../schemas/catalogue';
import type { AlertEvent } from '../../schemas/types';
import { fatigueProcessor } from '../fatigue/keyed-processor';
import type { FatigueInput } from '../fatigue/state';
import { SESSION, T0, drive, faceEpisodes, merge, sessionEnded, sessionStarted } from '../fatigue/testing';
import { Replay, type ReplayOutput, type ReplayRecord } from './replay';

/**
 * The processor's trust rules (issue 11) as the live runner applies them, through Replay (the same
 * merge, ownership and eviction, no Kafka): a session belongs to the tenant of its first record; a
 * record of another tenant never touches it, whatever its ts, also after the session ended; idle
 * eviction runs on append time, per session, so no other session's timestamps end it.
 */
const topicOf: Record<string, TopicKey> = {
  face: 'face',
  vehicle: 'vehicle',
  eeg: 'eeg',
  game: 'game',
  session: 'sessions',
  command: 'commands',
};
const s = (sec: number) => T0 + sec * 1000;

type Rec = { topic: TopicKey; record: ReplayRecord };

/** Input events as records in arrival order, appended `lag` ms after their ts unless `appendTs` says otherwise. */
const records = (xs: FatigueInput[], o: { tenant?: string; session?: string; appendTs?: number } = {}): Rec[] =>
  xs.flatMap((x) => {
    if (x.kind === 'tick') return [];
    const value = { ...x.event, tenant_id: o.tenant ?? x.event.tenant_id, session_id: o.session ?? x.event.session_id };
    return [
      {
        topic: topicOf[x.kind]!,
        record: { offset: '', session: value.session_id, ts: value.ts, appendTs: o.appendTs ?? value.ts + 20, value },
      },
    ];
  });

/** Replays records in the given arrival order (offsets per topic in that order), in batches of `batch` per push. */
function replay(recs: Rec[], batch = 50) {
  const out: ReplayOutput[] = [];
  const r = new Replay(fatigueProcessor, (o) => out.push(o));
  const next = new Map<TopicKey, number>();
  let run: Rec[] = [];
  const push = () => {
    if (run.length)
      r.push(
        0,
        run[0]!.topic,
        run.map((x) => x.record),
      );
    run = [];
  };
  for (const x of recs) {
    const n = next.get(x.topic) ?? 0;
    next.set(x.topic, n + 1);
    if (run.length && (run[0]!.topic !== x.topic || run.length >= batch)) push();
    run.push({ topic: x.topic, record: { ...x.record, offset: String(n) } });
  }
  push();
  r.finish();
  const of = (session: string) => out.filter((o) => o.value.session_id === session).map((o) => o.value);
  return { out, of, counts: r.counts };
}

/** Session A of tenant-1: started, 3 minutes of a tiring drive, ended. */
const A: FatigueInput[] = [
  sessionStarted(s(0)),
  ...drive({ from: s(0), durationMs: 180_000, seed: 3, fatigue: (t) => Math.min(1, t / 120_000) }),
  sessionEnded(s(180)),
];

describe('trust rules of the processor (through Replay, as the live runner)', () => {
  it("given A's session of tenant-1, when tenant-2's frames naming it (4 s of closed eyes, ts ahead of A's) arrive mid-stream, then none touches it: A's outputs equal a run without them", () => {
    const alone = replay(records(A));
    expect(alone.of(SESSION).length).toBeGreaterThan(20);
    const at = records(A).findIndex((x) => x.record.ts >= s(90));
    const hostile = records(faceEpisodes(s(95), s(99), { closures: [[s(95), 4_000]] }), { tenant: 'tenant-2' });
    const mixed = [...records(A).slice(0, at), ...hostile, ...records(A).slice(at)];
    const r = replay(mixed);
    expect(r.counts.tenantMismatch).toBe(hostile.length);
    expect(r.counts.late).toBe(alone.counts.late);
    expect(r.of(SESSION)).toEqual(alone.of(SESSION));
  });

  it('given an ended session, when another tenant names its id, then it is refused (the owner is remembered); its owner may start it afresh', () => {
    const ended = records(A);
    const later = records(drive({ from: s(400), durationMs: 20_000, seed: 4 }));
    const r = replay([...ended, ...records([sessionStarted(s(400))], { tenant: 'tenant-2' }), ...later]);
    expect(r.counts.tenantMismatch).toBe(1);
    const own = replay([...ended, ...later]);
    expect(r.of(SESSION)).toEqual(own.of(SESSION));
  });

  it("given A with an active alert, when session B on the same partition sends frames stamped a year ahead (appended now), then A's alert is not cleared with session_ended and A keeps scoring", () => {
    const year = 365 * 24 * 3_600_000;
    const bFrames = records(faceEpisodes(s(60), s(62)), { session: 'session-b', tenant: 'tenant-2' }).map((x) => ({
      ...x,
      record: { ...x.record, ts: x.record.ts + year, value: { ...(x.record.value as object), ts: x.record.ts + year } },
    }));
    const at = records(A).findIndex((x) => x.record.ts >= s(100));
    const alone = replay(records(A));
    const r = replay([...records(A).slice(0, at), ...bFrames, ...records(A).slice(at)]);
    expect(r.of(SESSION)).toEqual(alone.of(SESSION));
    const cleared = (r.of(SESSION) as AlertEvent[]).filter(
      (v) => v.event && 'reason' in v.event && v.event.type === 'AlertCleared' && v.event.reason === 'session_ended',
    );
    expect(cleared.every((c) => c.ts >= s(180))).toBe(true);
  });

  it('given a session quiet for the idle time of append time while another session goes on, then only the quiet one is evicted, at its own last ts', () => {
    // A's records stop at 60 s; B (another session, same partition) goes on to 10 min of append time
    const a = records(merge([sessionStarted(s(0))], drive({ from: s(0), durationMs: 60_000, seed: 5 })));
    const b = records(merge([sessionStarted(s(0))], drive({ from: s(0), durationMs: 600_000, seed: 6 })), {
      session: 'session-b',
    });
    const all = [...a, ...b].sort((x, y) => x.record.appendTs! - y.record.appendTs!);
    const r = replay(all);
    const scoresA = r.out.filter((o) => o.topic === 'scores' && o.value.session_id === SESSION);
    // A was flushed by eviction: its last window (the one holding its last frame, ending at 60 s) is scored
    expect(Math.max(...scoresA.map((o) => (o.value as unknown as { ts: number }).ts))).toBe(s(60));
    // B, never quiet, was not evicted: its windows run on (nothing is flushed at the end of a replay)
    const scoresB = r.out.filter((o) => o.topic === 'scores' && o.value.session_id === 'session-b');
    expect(Math.max(...scoresB.map((o) => (o.value as unknown as { ts: number }).ts))).toBeGreaterThan(s(590));
    expect(r.counts.late).toBe(0);
  });
});
