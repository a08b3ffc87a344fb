import { dueTimes, pace, playbackTimeline, type PlaybackEvent } from './playback';

const ev = (kind: PlaybackEvent['kind'], ts: number, n: number): PlaybackEvent => ({ kind, ts, data: { n } });

describe('playback timeline and pacing', () => {
  it('orders by event time, and at the same time a telemetry summary before the score before alerts', () => {
    const t = playbackTimeline(
      [ev('score', 10_000, 1), ev('score', 5_000, 2)],
      [ev('alert', 10_000, 3)],
      [ev('telemetry', 10_000, 4), ev('telemetry', 0, 5)],
    );
    expect(t.map((e) => e.data.n)).toEqual([5, 2, 4, 1, 3]);
  });

  it('makes each event due at its event-time offset from the first divided by the speed', () => {
    const t = playbackTimeline([ev('score', 1_000, 1), ev('score', 6_000, 2), ev('score', 33_000, 3)]);
    expect(dueTimes(t, 32)).toEqual([0, 156.25, 1_000]);
    expect(dueTimes(t, 1)).toEqual([0, 5_000, 32_000]);
  });

  it('waits against a clock until each event is due, stops when emit refuses, and resumes after an index', async () => {
    const t = playbackTimeline([ev('score', 0, 1), ev('score', 4_000, 2), ev('alert', 8_000, 3)]);
    let now = 0;
    const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
    const seen: [number, number][] = [];
    const sent = await pace(t, 2, (e) => (seen.push([now, e.data.n as number]), true), 0, clock);
    expect(sent).toBe(3);
    expect(seen).toEqual([
      [0, 1],
      [2_000, 2],
      [4_000, 3],
    ]);
    seen.length = 0;
    now = 100;
    expect(await pace(t, 2, (e) => (seen.push([now, e.data.n as number]), e.data.n !== 2), 1, clock)).toBe(0);
    expect(seen).toEqual([[100, 2]]);
  });
});
