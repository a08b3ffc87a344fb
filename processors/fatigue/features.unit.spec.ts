import { fatigueV1 } from './config';
import { eegRatioOf } from './processor';
import {
  T0,
  departure,
  eeg,
  every,
  face,
  faceAt10Hz,
  faceEpisodes,
  merge,
  missed,
  pushWatermark,
  response,
  run,
  scoreAt,
  shown,
  tsOf,
  vehicle,
} from './testing';

/** The window [T0, T0 + 60 s) */
const E = T0 + 60_000;

/** Face frames at 10 Hz over the window, closed at the frames where `closed(i)` (i = frame index). */
const faceWindow = (closed: (i: number) => boolean) =>
  faceAt10Hz(T0, E + 100, (_ts, i) => ({ closure: closed(i) ? 0.95 : 0.1 }));

/** Vehicle frames at 10 Hz over the window. */
const vehicleWindow = (speed: number, offset: (i: number) => number) =>
  every(T0, E + 100, 100, (ts, i) => vehicle(ts, { speed, offset: offset(i) }));

describe('ocular: PERCLOS and long blinks', () => {
  // Isolated 100 ms closures (one closed frame between open ones) are not long blinks.
  it.each([
    ['3 of every 50 frames', (i: number) => i % 50 < 6 && i % 2 === 0, 0.06, 0],
    ['9 of every 100 frames', (i: number) => i % 100 < 18 && i % 2 === 0, 0.09, 0.35],
    ['6 of every 50 frames', (i: number) => i % 50 < 12 && i % 2 === 0, 0.12, 0.7],
    ['10 of every 50 frames', (i: number) => i % 50 < 20 && i % 2 === 0, 0.2, 0.7],
  ])('given isolated 100 ms closures on %s, then PERCLOS %p and ocular %p', (_label, closed, perclos, ocular) => {
    const s = scoreAt(run(merge(faceWindow(closed), [pushWatermark(E)])), E)!;
    expect(s.features.perclos).toBeCloseTo(perclos, 10);
    expect(s.features.long_blink_share).toBe(0);
    expect(s.components.ocular).toBeCloseTo(ocular, 10);
    expect(s.components.yawn).toBe(0);
    // only the face stream is present: (0.40 * ocular + 0.05 * yawn) / 0.45
    expect(s.score).toBeCloseTo((100 * 0.4 * ocular) / 0.45, 1);
  });

  it('given irregular frames, then PERCLOS weights each frame by the time to the next one', () => {
    // every 10 s: a closed frame whose successor comes 200 ms later (one frame skipped)
    const frames = faceAt10Hz(T0, E + 100, (ts) => ({ closure: (ts - T0) % 10_000 === 0 ? 0.95 : 0.1 })).filter(
      (x) => (tsOf(x) - T0) % 10_000 !== 100,
    );
    const s = scoreAt(run(merge(frames, [pushWatermark(E)])), E)!;
    expect(s.features.perclos).toBeCloseTo(1_200 / 60_000, 10); // not 6 / 594 frames
  });

  it('given a camera drop-out after a closed frame, then the frame stands for at most 250 ms', () => {
    const frames = faceAt10Hz(T0, E + 100, (ts) => ({ closure: ts === T0 + 30_000 ? 0.95 : 0.1 })).filter(
      (x) => !(tsOf(x) > T0 + 30_000 && tsOf(x) < T0 + 32_000),
    );
    const s = scoreAt(run(merge(frames, [pushWatermark(E)])), E)!;
    expect(s.features.perclos).toBeCloseTo(250 / (60_000 - 2_000 + 250), 10);
  });

  it('given an eye_closure of exactly 0.8, then the eye counts as closed (P80)', () => {
    const frames = faceAt10Hz(T0, E + 100, (_ts, i) => ({ closure: i % 50 < 6 && i % 2 === 0 ? 0.8 : 0.79 }));
    expect(scoreAt(run(merge(frames, [pushWatermark(E)])), E)!.features.perclos).toBeCloseTo(0.06, 10);
  });

  it('given closures of 100, 140, 150 and 990 ms, then the long-blink share is 2 / 4 (0.15 s <= long < 1 s)', () => {
    const closures: [number, number][] = [
      [T0 + 5_000, 100],
      [T0 + 15_000, 140],
      [T0 + 25_000, 150],
      [T0 + 35_000, 990],
    ];
    const s = scoreAt(run(merge(faceEpisodes(T0, E + 100, { closures }), [pushWatermark(E)])), E)!;
    expect(s.features.long_blink_share).toBe(0.5);
    // PERCLOS (100 + 140 + 150 + 990) / 60000 = 0.023 is below Pb: only the long-blink term, 0.3 * 0.5 / 0.5
    expect(s.components.ocular).toBeCloseTo(0.3, 10);
  });

  it('given a 1 s closure (a microsleep), then it counts among all closures but not as a long blink', () => {
    const closures: [number, number][] = [
      [T0 + 5_000, 200],
      [T0 + 15_000, 1_000],
    ];
    const s = scoreAt(run(merge(faceEpisodes(T0, E + 100, { closures }), [pushWatermark(E)])), E)!;
    expect(s.features.long_blink_share).toBe(0.5);
  });

  it('given the face never detected in the window, then ocular and yawn are missing (nothing measurable)', () => {
    const frames = every(T0, E + 100, 100, (ts) => face(ts, { detected: false }));
    const r = run(
      merge(
        frames,
        vehicleWindow(80, () => 0),
        [pushWatermark(E)],
      ),
    );
    const s = scoreAt(r, E)!;
    expect(s.components.ocular).toBeNull();
    expect(s.components.yawn).toBeNull();
    expect(s.features.perclos).toBeNull();
    expect(s.components.driving).toBe(0);
  });
});

describe('yawn: mouth_open >= 0.6 held >= 1.5 s', () => {
  it.each([
    [1_400, 0.8, 0],
    [1_500, 0.8, 1],
    [4_000, 0.8, 1],
    [1_500, 0.6, 1],
    [1_500, 0.59, 0],
  ])('given the mouth open %p ms at level %p, then %p yawns', (ms, level, yawns) => {
    const frames = faceEpisodes(T0, E + 100, { mouth: [[T0 + 20_000, ms]], mouthLevel: level });
    const s = scoreAt(run(merge(frames, [pushWatermark(E)])), E)!;
    expect(s.features.yawns).toBe(yawns);
    expect(s.components.yawn).toBeCloseTo(yawns / 3, 10);
  });

  it('given three yawns, then the yawn sub-score saturates', () => {
    const mouth: [number, number][] = [10_000, 25_000, 40_000, 50_000].map((t) => [T0 + t, 2_000]);
    const s = scoreAt(run(merge(faceEpisodes(T0, E + 100, { mouth }), [pushWatermark(E)])), E)!;
    expect(s.features.yawns).toBe(4);
    expect(s.components.yawn).toBe(1);
  });
});

describe('driving: SDLP above 40 km/h and lane departures', () => {
  it('given weaving of ±0.3 m at 41 km/h, then SDLP 0.3 m and driving 1', () => {
    const s = scoreAt(
      run(
        merge(
          vehicleWindow(41, (i) => (i % 2 ? 0.3 : -0.3)),
          [pushWatermark(E)],
        ),
      ),
      E,
    )!;
    expect(s.features.sdlp_m).toBeCloseTo(0.3, 10);
    expect(s.components.driving).toBeCloseTo(1, 12);
    expect(s.score).toBe(100);
  });

  it('given weaving of ±0.25 m, then driving is half way: (0.25 - 0.20) / 0.10', () => {
    const s = scoreAt(
      run(
        merge(
          vehicleWindow(90, (i) => (i % 2 ? 0.25 : -0.25)),
          [pushWatermark(E)],
        ),
      ),
      E,
    )!;
    expect(s.components.driving).toBeCloseTo(0.5, 4);
    expect(s.score).toBe(50);
  });

  it('given the same weaving at exactly 40 km/h, then no SDLP and driving 0', () => {
    const s = scoreAt(
      run(
        merge(
          vehicleWindow(40, (i) => (i % 2 ? 0.3 : -0.3)),
          [pushWatermark(E)],
        ),
      ),
      E,
    )!;
    expect(s.features.sdlp_m).toBeNull();
    expect(s.components.driving).toBe(0);
  });

  it('given only frames below 40 km/h except the last 5 s, then SDLP uses only the fast frames', () => {
    const frames = every(T0, E + 100, 100, (ts, i) =>
      vehicle(ts, { speed: ts >= E - 5_000 ? 60 : 20, offset: ts >= E - 5_000 ? (i % 2 ? 0.1 : -0.1) : 2 }),
    );
    expect(scoreAt(run(merge(frames, [pushWatermark(E)])), E)!.features.sdlp_m).toBeCloseTo(0.1, 10);
  });

  it.each([
    [1, 0.5],
    [2, 1],
    [3, 1],
  ])('given a steady lane and %p departures in the window, then driving %p', (n, driving) => {
    const deps = Array.from({ length: n }, (_, i) => departure(T0 + 10_000 + i * 5_000));
    const s = scoreAt(
      run(
        merge(
          vehicleWindow(90, () => 0.05),
          deps,
          [pushWatermark(E)],
        ),
      ),
      E,
    )!;
    expect(s.features.lane_departures).toBe(n);
    expect(s.components.driving).toBe(driving);
  });

  it('given a departure more than 60 s ago, then it no longer counts', () => {
    const frames = every(T0, E + 10_100, 100, (ts) => vehicle(ts, { speed: 90, offset: 0 }));
    const r = run(merge(frames, [departure(T0 + 4_000), pushWatermark(E + 5_000)]));
    expect(scoreAt(r, E)!.features.lane_departures).toBe(1);
    expect(scoreAt(r, E + 5_000)!.features.lane_departures).toBe(0);
  });
});

describe('reaction: lapses = responses >= 500 ms plus missed stimuli', () => {
  it('given responses of 499 ms and 500 ms and a missed stimulus, then 2 lapses', () => {
    const r = run([
      shown(T0 + 10_000),
      response(T0 + 10_499, 499),
      shown(T0 + 20_000),
      response(T0 + 20_500, 500),
      shown(T0 + 30_000),
      missed(T0 + 33_000),
      shown(T0 + 55_000),
      pushWatermark(E),
    ]);
    const s = scoreAt(r, E)!;
    expect(s.features.lapses).toBe(2);
    expect(s.components.reaction).toBeCloseTo(2 / 3, 4);
    expect(s.score).toBe(66.7);
  });

  it('given four lapses, then the reaction sub-score saturates at 1', () => {
    const r = run([...[1, 2, 3, 4].map((i) => missed(T0 + i * 10_000)), shown(T0 + 55_000), pushWatermark(E)]);
    expect(scoreAt(r, E)!.components.reaction).toBe(1);
  });
});

describe('eeg: (theta+alpha)/beta over frames with quality >= 0.5', () => {
  it('given channels of mixed quality, then the frame ratio averages the good channels only', () => {
    const x = eeg(T0, { ratio: 2 });
    if (x.kind !== 'eeg') throw new Error('eeg');
    const channels = [
      { ...x.event.channels[0]!, theta_uv2: 5, alpha_uv2: 5, beta_uv2: 10, quality: 0.5 }, // 1.0
      { ...x.event.channels[0]!, theta_uv2: 10, alpha_uv2: 10, beta_uv2: 10, quality: 0.9 }, // 2.0
      { ...x.event.channels[0]!, theta_uv2: 90, alpha_uv2: 90, beta_uv2: 10, quality: 0.49 }, // ignored
      { ...x.event.channels[0]!, theta_uv2: 1, alpha_uv2: 1, beta_uv2: 0, quality: 1 }, // no beta: ignored
    ];
    expect(eegRatioOf({ ...x.event, channels }, fatigueV1)).toBeCloseTo(1.5, 12);
    expect(eegRatioOf({ ...x.event, channels: [channels[2]!] }, fatigueV1)).toBeNull();
  });

  it('given good and poor frames, then the window ratio is the mean over the good frames', () => {
    const frames = every(T0, E + 100, 100, (ts, i) =>
      i % 2 ? eeg(ts, { ratio: 1.2, quality: 0.9 }) : eeg(ts, { ratio: 9, quality: 0.3 }),
    );
    const s = scoreAt(run(merge(frames, faceAt10Hz(T0, E + 100), [pushWatermark(E)])), E)!;
    expect(s.features.eeg_ratio).toBeCloseTo(1.2, 4);
    // before the baseline exists, EEG stays out of the score
    expect(s.features.eeg_ratio_z).toBeNull();
    expect(s.components.eeg).toBeNull();
  });
});

describe('silence rule and renormalisation', () => {
  /** Face with PERCLOS 0.12 (ocular 0.7) over the window, a steady vehicle until `vehicleUntil`. */
  const inputs = (vehicleUntil: number, extraVehicleAt?: number) =>
    merge(
      faceWindow((i) => i % 50 < 12 && i % 2 === 0),
      every(T0, vehicleUntil, 100, (ts) => vehicle(ts, { speed: 90, offset: 0 })),
      extraVehicleAt === undefined ? [] : [vehicle(extraVehicleAt, { speed: 90, offset: 0 })],
      [pushWatermark(E)],
    );

  it('given every stream active, then the weights of the present components are renormalised', () => {
    const s = scoreAt(run(inputs(E + 100)), E)!;
    expect(s.components).toEqual({ ocular: 0.7, driving: 0, eeg: null, reaction: null, yawn: 0 });
    expect(s.score).toBe(40); // 100 * 0.40 * 0.7 / (0.40 + 0.25 + 0.05)
  });

  it('given the vehicle silent for the last 10 s of the window, then driving is missing', () => {
    const s = scoreAt(run(inputs(T0 + 45_000, E - 10_001)), E)!;
    expect(s.components.driving).toBeNull();
    expect(s.score).toBe(62.2); // 100 * 0.40 * 0.7 / (0.40 + 0.05)
  });

  it('given a vehicle frame exactly 10 s before the window end, then driving is present', () => {
    const s = scoreAt(run(inputs(T0 + 45_000, E - 10_000)), E)!;
    expect(s.components.driving).toBe(0);
    expect(s.score).toBe(40);
  });

  it('given only EEG before the baseline exists, then no window has a score', () => {
    const r = run(
      merge(
        every(T0, E + 100, 100, (ts) => eeg(ts)),
        [pushWatermark(E)],
      ),
    );
    expect(r.scores).toEqual([]);
  });

  it('given every stream silent for the last 10 s of a window, then that window has no score', () => {
    const r = run(merge(faceAt10Hz(T0, T0 + 30_000), [pushWatermark(E)]));
    expect(scoreAt(r, T0 + 35_000)).toBeDefined(); // the last frame (T0 + 29.9 s) is within [25 s, 35 s)
    expect(scoreAt(r, T0 + 40_000)).toBeUndefined(); // but not within [30 s, 40 s)
    expect(r.scores.map((s) => s.window_end_ts).at(-1)).toBe(T0 + 35_000);
  });
});
