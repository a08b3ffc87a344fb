import { PartitionMerger, type MergeItem } from './merge';

const item = (topic: string, offset: number, ts: number, session = 's1'): MergeItem<string> => ({
  topic,
  session,
  offset: String(offset),
  ts,
  payload: `${topic}@${offset}`,
});
const names = (items: MergeItem<string>[]) => items.map((i) => i.payload);

describe('event-time merge across co-partitioned topics', () => {
  it('holds a session’s records until every input that may still deliver has passed them', () => {
    const m = new PartitionMerger<string>(['face', 'eeg']);
    m.push('face', [item('face', 0, 100), item('face', 1, 200), item('face', 2, 300)], false);
    expect(m.release()).toEqual([]); // eeg has said nothing yet for s1
    m.push('eeg', [item('eeg', 0, 150)], false);
    expect(names(m.release())).toEqual(['face@0']);
    m.push('eeg', [item('eeg', 1, 400)], true);
    // face may still deliver another record at ts 300, so face@2 waits.
    expect(names(m.release())).toEqual(['eeg@0', 'face@1']);
    m.markCaughtUp('face');
    expect(names(m.release())).toEqual(['face@2', 'eeg@1']);
  });

  it('gives the same order whatever the batch boundaries (ties by topic order, then offset)', () => {
    const face = [item('face', 0, 100), item('face', 1, 200), item('face', 2, 200)];
    const eeg = [item('eeg', 0, 100), item('eeg', 1, 200), item('eeg', 2, 250)];
    const run = (plan: [string, MergeItem<string>[], boolean][]) => {
      const m = new PartitionMerger<string>(['face', 'eeg']);
      const out: string[] = [];
      for (const [t, items, caught] of plan) {
        m.push(t, items, caught);
        out.push(...names(m.release()));
      }
      return out;
    };
    const a = run([
      ['face', face, true],
      ['eeg', eeg, true],
    ]);
    const b = run([
      ['eeg', eeg.slice(0, 1), false],
      ['face', face.slice(0, 2), false],
      ['eeg', eeg.slice(1), true],
      ['face', face.slice(2), true],
    ]);
    expect(a).toEqual(['face@0', 'eeg@0', 'face@1', 'face@2', 'eeg@1', 'eeg@2']);
    expect(b).toEqual(a);
  });

  it('does not let one session wait for another', () => {
    const m = new PartitionMerger<string>(['face', 'eeg']);
    m.push('face', [item('face', 0, 100, 'a'), item('face', 1, 100, 'b')], true);
    m.push('eeg', [item('eeg', 0, 300, 'a')], false);
    // a's eeg has passed 100; b's eeg has not spoken yet and may still deliver, so only b waits.
    expect(names(m.release())).toEqual(['face@0']);
  });

  it('keeps each topic in offset order even when a device’s ts goes backwards', () => {
    const m = new PartitionMerger<string>(['face', 'eeg']);
    m.push('face', [item('face', 0, 300), item('face', 1, 100)], true);
    m.push('eeg', [item('eeg', 0, 200)], true);
    expect(names(m.release())).toEqual(['eeg@0', 'face@0', 'face@1']);
  });

  it('reports the lowest held offset per topic (the commit point)', () => {
    const m = new PartitionMerger<string>(['face', 'eeg']);
    m.push('face', [item('face', 7, 100, 'a'), item('face', 8, 100, 'b')], true);
    m.push('eeg', [item('eeg', 3, 500, 'a')], false);
    m.release();
    expect(m.lowestHeldOffsets()).toEqual(
      new Map([
        ['face', 8n],
        ['eeg', 3n],
      ]),
    );
  });

  it('releases the oldest records past its bound instead of growing', () => {
    const m = new PartitionMerger<string>(['face', 'eeg'], 2);
    m.push('face', [item('face', 0, 1), item('face', 1, 2), item('face', 2, 3), item('face', 3, 4)], false);
    expect(names(m.release())).toEqual(['face@0', 'face@1']);
    expect(m.size).toBe(2);
  });
});

describe('barriers and stale caught-up flags', () => {
  const barrier = (topic: string, offset: number, ts: number): MergeItem<string> => ({
    ...item(topic, offset, ts),
    barrier: true,
  });

  it('holds a barrier until the other inputs were seen caught up after it arrived', () => {
    const m = new PartitionMerger<string>(['eeg', 'sessions']);
    m.push('eeg', [item('eeg', 0, 900)], true); // eeg caught up, but before the barrier
    m.push('sessions', [barrier('sessions', 0, 1000)], true);
    expect(m.release().map((i) => i.payload)).toEqual(['eeg@0']);
    m.push('eeg', [item('eeg', 1, 1000)], true); // the frame stamped with the end, fetched after it
    expect(names(m.release())).toEqual(['eeg@1', 'sessions@0']);
  });

  it('releases a barrier once a later check finds the other inputs at their end', () => {
    const m = new PartitionMerger<string>(['eeg', 'sessions']);
    m.push('eeg', [item('eeg', 0, 900)], true);
    m.push('sessions', [barrier('sessions', 0, 1000)], true);
    expect(m.release()).toHaveLength(1);
    const asOf = m.nextSeq();
    m.markCaughtUp('eeg', true, asOf);
    expect(names(m.release())).toEqual(['sessions@0']);
  });

  it('blocks on inputs whose caught-up flag was forgotten until they are confirmed again', () => {
    const m = new PartitionMerger<string>(['face', 'vehicle']);
    m.push('face', [item('face', 0, 100)], true);
    m.push('vehicle', [item('vehicle', 0, 100)], true);
    m.release();
    m.forgetCaughtUp();
    m.push('vehicle', [item('vehicle', 1, 9000)], true);
    expect(m.release()).toEqual([]); // face may be 9 s behind after the pause
    m.push('face', [item('face', 1, 8000)], true);
    expect(names(m.release())).toEqual(['face@1', 'vehicle@1']);
  });
});

describe('caught-up claims: a flag covers only records appended before it', () => {
  const appended = (it: MergeItem<string>, appendTs: number): MergeItem<string> => ({ ...it, appendTs });

  it('holds a burst appended after another input’s claim until that input delivers the same ticks', () => {
    const m = new PartitionMerger<string>(['eeg', 'face']);
    // Before the burst: eeg caught up at its record appended at t=1000 (claim 1000).
    m.push('eeg', [appended(item('eeg', 0, 100), 1000)], true, 1000);
    m.push('face', [appended(item('face', 0, 100), 1000)], true, 1000);
    expect(names(m.release())).toEqual(['eeg@0', 'face@0']);
    // The backlog: face delivers 10 s of event time appended at 5000, eeg's copy of those ticks not yet.
    const burst = [1, 2, 3].map((i) => appended(item('face', i, 100 + i * 3000), 5000));
    m.push('face', burst, true, 5000);
    expect(m.release()).toEqual([]); // without claims all three went out, and eeg's ticks turned late
    m.push('eeg', [appended(item('eeg', 1, 3100), 5001), appended(item('eeg', 2, 6100), 5001)], true, 5001);
    expect(names(m.release())).toEqual(['eeg@1', 'face@1', 'eeg@2', 'face@2', 'face@3']); // ties: eeg first
  });

  it('releases on a newer claim of the quiet input (an end-offset check after the append)', () => {
    const m = new PartitionMerger<string>(['eeg', 'face']);
    m.push('eeg', [appended(item('eeg', 0, 100), 1000)], true, 1000);
    m.push('face', [appended(item('face', 0, 500), 2000)], true, 2000);
    expect(names(m.release())).toEqual(['eeg@0']);
    m.markCaughtUp('eeg', true, m.nextSeq(), 1999);
    expect(m.release()).toEqual([]); // a check older than the append claims nothing about it
    m.markCaughtUp('eeg', true, m.nextSeq(), 2500);
    expect(names(m.release())).toEqual(['face@0']);
  });

  it('holds a barrier appended after a claim until a claim covers it', () => {
    const m = new PartitionMerger<string>(['eeg', 'sessions']);
    m.push('eeg', [appended(item('eeg', 0, 900), 1000)], true, 1000);
    m.push('sessions', [{ ...appended(item('sessions', 0, 1000), 3000), barrier: true }], true);
    expect(names(m.release())).toEqual(['eeg@0']);
    m.markCaughtUp('eeg', true, m.nextSeq(), 2000);
    expect(m.release()).toEqual([]);
    m.markCaughtUp('eeg', true, m.nextSeq(), 3000);
    expect(names(m.release())).toEqual(['sessions@0']);
  });

  it('keeps covering everything when a flag has no claim (replays, quiet inputs)', () => {
    const m = new PartitionMerger<string>(['eeg', 'face']);
    m.push('eeg', [appended(item('eeg', 0, 100), 1000)], true);
    m.push('face', [appended(item('face', 0, 9000), 99_000)], true);
    expect(names(m.release())).toEqual(['eeg@0', 'face@0']);
  });
});
