import { configProblems, fatigueV1 } from './config';
import {
  addSample,
  combineScore,
  drivingSubScore,
  eegSubScore,
  emptyMoments,
  mergeMoments,
  ocularSubScore,
  reactionSubScore,
  stdOf,
  yawnSubScore,
} from './scoring';

const c = fatigueV1;

describe('fatigue-v1 config', () => {
  it('given the shipped config, then it has no problems and records its version', () => {
    expect(configProblems(c)).toEqual([]);
    expect(c.model_version).toBe('fatigue-v1');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('given weights not summing to 1 and a silence span off the hop grid, then both are reported', () => {
    const bad = { ...c, silenceMs: 7_000, weights: { ...c.weights, ocular: 0.5 } };
    expect(configProblems(bad)).toEqual([
      'silenceMs must be a multiple of hopMs and at most windowMs',
      expect.stringContaining('weights must sum to 1'),
    ]);
  });
});

describe('ocular sub-score: 0.7 * clamp((P - Pb) / (0.12 - Pb)) + 0.3 * clamp(longShare / 0.5)', () => {
  it.each([
    [0.03, 0],
    [0.06, 0],
    [0.09, 0.35],
    [0.12, 0.7],
    [0.3, 0.7],
  ])('given PERCLOS %p, the default Pb and no closures, then %p', (perclos, expected) => {
    expect(ocularSubScore(perclos, null, c.perclosBaselineDefault, c)).toBeCloseTo(expected, 10);
  });

  it('given a personal Pb of 0.02, then PERCLOS 0.07 is half way to the 0.12 reference', () => {
    expect(ocularSubScore(0.07, null, 0.02, c)).toBeCloseTo(0.35, 10);
    expect(ocularSubScore(0.02, null, 0.02, c)).toBe(0);
  });

  it.each([
    [0, 0],
    [0.25, 0.15],
    [0.5, 0.3],
    [0.9, 0.3],
  ])('given a long-blink share %p at baseline PERCLOS, then %p', (share, expected) => {
    expect(ocularSubScore(0.06, share, 0.06, c)).toBeCloseTo(expected, 10);
  });

  it('given both terms saturated, then 1', () => {
    expect(ocularSubScore(0.2, 0.6, 0.06, c)).toBeCloseTo(1, 10);
  });
});

describe('driving sub-score: clamp((SDLP - b) / 0.10) + 0.5 per departure, capped at 1', () => {
  it.each([
    [0.15, 0, 0],
    [0.2, 0, 0],
    [0.25, 0, 0.5],
    [0.3, 0, 1],
    [0.45, 0, 1],
    [0.2, 1, 0.5],
    [0.2, 2, 1],
    [0.25, 1, 1],
    [0.2, 3, 1],
  ])('given SDLP %p m and %p departures with the default b, then %p', (sdlp, departures, expected) => {
    expect(drivingSubScore(sdlp, departures, c.sdlpBaselineDefaultM, c)).toBeCloseTo(expected, 10);
  });

  it('given no SDLP (speed never over 40 km/h), then only departures count', () => {
    expect(drivingSubScore(null, 0, 0.2, c)).toBe(0);
    expect(drivingSubScore(null, 1, 0.2, c)).toBe(0.5);
  });

  it('given a personal b of 0.10 m, then SDLP 0.15 m is half way', () => {
    expect(drivingSubScore(0.15, 0, 0.1, c)).toBeCloseTo(0.5, 10);
  });
});

describe('eeg, reaction and yawn sub-scores', () => {
  it.each([
    [-2, 0],
    [0, 0],
    [1.5, 0.5],
    [3, 1],
    [4, 1],
  ])('given z = %p, then the EEG sub-score is %p', (z, expected) => {
    expect(eegSubScore(z, c)).toBeCloseTo(expected, 10);
  });

  it.each([
    [0, 0],
    [1, 1 / 3],
    [2, 2 / 3],
    [3, 1],
    [5, 1],
  ])('given %p lapses or yawns, then the sub-score is %p', (n, expected) => {
    expect(reactionSubScore(n, c)).toBeCloseTo(expected, 10);
    expect(yawnSubScore(n, c)).toBeCloseTo(expected, 10);
  });
});

describe('score: 100 * weighted sum over the present components, renormalised, one decimal', () => {
  it('given every component, then the weights are .40/.25/.20/.10/.05', () => {
    expect(combineScore({ ocular: 1, driving: 0, eeg: 0, reaction: 0, yawn: 0 }, c)).toBe(40);
    expect(combineScore({ ocular: 0, driving: 1, eeg: 0, reaction: 0, yawn: 0 }, c)).toBe(25);
    expect(combineScore({ ocular: 0, driving: 0, eeg: 1, reaction: 0, yawn: 0 }, c)).toBe(20);
    expect(combineScore({ ocular: 0, driving: 0, eeg: 0, reaction: 1, yawn: 0 }, c)).toBe(10);
    expect(combineScore({ ocular: 0, driving: 0, eeg: 0, reaction: 0, yawn: 1 }, c)).toBe(5);
    expect(combineScore({ ocular: 1, driving: 1, eeg: 1, reaction: 1, yawn: 1 }, c)).toBe(100);
  });

  it('given missing components, then the weights are renormalised over the present ones', () => {
    // (0.4 * 0.5 + 0.1 * 1) / 0.5 = 0.6
    expect(combineScore({ ocular: 0.5, driving: null, eeg: null, reaction: 1, yawn: null }, c)).toBe(60);
    expect(combineScore({ ocular: null, driving: null, eeg: null, reaction: 2 / 3, yawn: null }, c)).toBe(66.7);
  });

  it('given no component present, then no score', () => {
    expect(combineScore({ ocular: null, driving: null, eeg: null, reaction: null, yawn: null }, c)).toBeNull();
  });

  it('given a weighted sum with more decimals, then the score is rounded to one decimal', () => {
    // (0.4 * 0.123456 + 0.25 * 0.5) / 0.65 = 0.26827...
    expect(combineScore({ ocular: 0.123456, driving: 0.5, eeg: null, reaction: null, yawn: null }, c)).toBe(26.8);
  });
});

describe('moments', () => {
  it('given samples split in slices, then merging the slices equals one pass', () => {
    const xs = [0.1, -0.3, 0.25, 0.4, -0.05, 0.2, 0.33];
    const all = emptyMoments();
    xs.forEach((x) => addSample(all, x));
    const a = emptyMoments();
    const b = emptyMoments();
    xs.slice(0, 3).forEach((x) => addSample(a, x));
    xs.slice(3).forEach((x) => addSample(b, x));
    mergeMoments(a, b);
    expect(a.n).toBe(all.n);
    expect(a.mean).toBeCloseTo(all.mean, 12);
    expect(stdOf(a)).toBeCloseTo(stdOf(all), 12);
  });

  it('given ±0.3 alternating, then the population std-dev is 0.3', () => {
    const m = emptyMoments();
    for (let i = 0; i < 100; i++) addSample(m, i % 2 ? 0.3 : -0.3);
    expect(stdOf(m)).toBeCloseTo(0.3, 12);
  });
});
