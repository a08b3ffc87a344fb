import type { TopicKey } from '../../schemas/catalogue';
import type { FatigueScored } from '../../schemas/types';
import { fatigueV1 } from '../fatigue/config';
import { fatigueV1Sensitive } from '../fatigue/models';
import { fatigueProcessorOf } from '../fatigue/keyed-processor';
import { drive, run, sessionEnded, sessionStarted, T0, type Run } from '../fatigue/testing';
import type { FatigueInput, FatigueState } from '../fatigue/state';
import { Replay, type ReplayOutput } from './replay';

const topicOf: Record<string, TopicKey> = {
  face: 'face',
  vehicle: 'vehicle',
  eeg: 'eeg',
  game: 'game',
  session: 'sessions',
  command: 'commands',
};

const DURATION = 6 * 60_000;
const inputs: FatigueInput[] = [
  sessionStarted(T0),
  ...drive({ from: T0, durationMs: DURATION, seed: 11, fatigue: (t) => Math.min(1, (1.5 * t) / DURATION) }),
  sessionEnded(T0 + DURATION),
];

/** The inputs as per-topic record lists, in offset order (what the range reader hands over). */
function perTopic(
  xs: FatigueInput[],
): Map<TopicKey, { offset: string; session: string; ts: number; value: unknown }[]> {
  const out = new Map<TopicKey, { offset: string; session: string; ts: number; value: unknown }[]>();
  for (const x of xs) {
    if (x.kind === 'tick') continue;
    const key = topicOf[x.kind]!;
    const list = out.get(key) ?? out.set(key, []).get(key)!;
    list.push({ offset: String(list.length), session: x.event.session_id, ts: x.event.ts, value: x.event });
  }
  return out;
}

/** A replay of a fatigue model (only `commands` empty from the start) and the outputs it emits, in order. */
function collectingReplay(config = fatigueV1): { replay: Replay<FatigueState>; out: ReplayOutput[] } {
  const out: ReplayOutput[] = [];
  const replay = new Replay(
    fatigueProcessorOf(config),
    (o) => out.push(o),
    () => ['commands'],
  );
  return { replay, out };
}

/** Replays the inputs, fetched in batches of `batch` records per topic, round robin over the topics. */
function replayed(batch: number, config = fatigueV1): ReplayOutput[] {
  const { replay, out } = collectingReplay(config);
  const queues = [...perTopic(inputs)];
  let more = true;
  for (let i = 0; more; i += batch) {
    more = false;
    for (const [topic, records] of queues) {
      const chunk = records.slice(i, i + batch);
      if (chunk.length) replay.push(0, topic, chunk);
      if (i + batch >= records.length && chunk.length) replay.reached(0, topic);
      if (i + batch < records.length) more = true;
    }
  }
  replay.finish();
  expect(replay.counts.late).toBe(0);
  expect(replay.openSessions).toBe(0); // SessionEnded: the state is dropped, as the live runner drops it
  return out;
}

const outputsOf = (r: Run): ReplayOutput[] =>
  r.outputs.flatMap<ReplayOutput>((o) =>
    o.kind === 'score'
      ? [{ topic: 'scores' as const, value: o.event }]
      : o.kind === 'alert'
        ? [{ topic: 'alerts' as const, value: o.event }]
        : [],
  );

describe('rescore replay', () => {
  it('gives exactly what the processor gives for the same session in event-time order', () => {
    const expected = outputsOf(run(inputs));
    expect(expected.filter((o) => o.topic === 'scores').length).toBe(72);
    expect(expected.some((o) => o.topic === 'alerts')).toBe(true);
    expect(replayed(500)).toEqual(expected);
  });

  it('does not depend on how the topics were fetched', () => {
    expect(replayed(37)).toEqual(replayed(5_000));
  });

  it('drops a redelivered batch', () => {
    const { replay, out } = collectingReplay();
    for (const [topic, records] of perTopic(inputs)) {
      replay.push(0, topic, records.slice(0, 100));
      replay.push(0, topic, records.slice(50)); // 50 again, then the rest
      replay.reached(0, topic);
    }
    replay.finish();
    expect(replay.counts.stepped).toBe(inputs.length);
    expect(out).toEqual(replayed(500));
  });

  it("counts a resend's copies once: the outputs equal those without them", () => {
    const { replay, out } = collectingReplay();
    let copies = 0;
    for (const [topic, records] of perTopic(inputs)) {
      // Every 50th EEG frame written twice (a new offset, the same event), as a resend writes it.
      const written = records.flatMap((r, i) => (topic === 'eeg' && i % 50 === 0 ? (copies++, [r, { ...r }]) : [r]));
      replay.push(
        0,
        topic,
        written.map((r, i) => ({ ...r, offset: String(i) })),
      );
      replay.reached(0, topic);
    }
    replay.finish();
    expect(copies).toBeGreaterThan(50);
    expect(replay.counts.duplicates).toBe(copies);
    expect(out).toEqual(replayed(500));
  });

  it('scores the same windows differently with another model of the registry', () => {
    const live = replayed(500).filter((o) => o.topic === 'scores');
    const sensitive = replayed(500, fatigueV1Sensitive).filter((o) => o.topic === 'scores');
    const scoreOf = (o: ReplayOutput) => o.value as FatigueScored;
    expect(sensitive.map((o) => scoreOf(o).ts)).toEqual(live.map((o) => scoreOf(o).ts));
    expect(sensitive.map((o) => scoreOf(o).score)).not.toEqual(live.map((o) => scoreOf(o).score));
    expect(sensitive).toEqual(
      outputsOf(run(inputs, { config: fatigueV1Sensitive })).filter((o) => o.topic === 'scores'),
    );
  });

  it('holds a session until every input has delivered past it or been read to its end', () => {
    const { replay } = collectingReplay();
    const topics = perTopic(inputs);
    for (const [topic, records] of topics) if (topic !== 'game') replay.push(0, topic, records);
    // The game topic has not delivered anything yet: nothing of the session may be stepped.
    expect(replay.counts.stepped).toBe(0);
    replay.reached(0, 'game'); // read to its end without a record of this session
    const pushed = inputs.filter((i) => i.kind !== 'game').length;
    // Released up to the slowest input still open (records at its last ts may still be joined by
    // others); SessionEnded is a barrier until the other inputs pass it or are read to their end.
    expect(replay.counts.stepped).toBeGreaterThan(pushed - 10);
    expect(replay.counts.stepped).toBeLessThan(pushed);
    expect(replay.openSessions).toBe(1);
    for (const topic of topics.keys()) if (topic !== 'game') replay.reached(0, topic);
    expect([replay.counts.stepped, replay.openSessions]).toEqual([pushed, 0]);
  });
});
