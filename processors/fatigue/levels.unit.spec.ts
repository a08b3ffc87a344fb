import { fatigueV1 } from './config';
import { foldScore, initialLevels, type LevelState } from './levels';

/** A level state with its own clock: window ends 0, 5 s, 10 s, ... across calls. */
interface Series {
  state: LevelState;
  end: number;
}
const newSeries = (): Series => ({ state: initialLevels(), end: 0 });

/** Folds one score per 5 s window end and returns the level after each. */
function levelsOf(scores: (number | null)[], series: Series = newSeries()): number[] {
  return scores.map((score) => {
    const level = foldScore(series.state, series.end, score, fatigueV1);
    series.end += 5_000;
    return level;
  });
}

const copy = (s: Series): Series => ({ state: { ...s.state }, end: s.end });

/** n scores of value v (5 s apart). */
const hold = (v: number | null, n: number): (number | null)[] => Array.from({ length: n }, () => v);

describe('level hysteresis', () => {
  it('given scores >= 50 held 25 s, then still level 0; held 30 s, then level 1', () => {
    // 6 scores = 25 s held (ends 0..25 s), the 7th (end 30 s) makes 30 s
    expect(levelsOf(hold(50, 6))).toEqual(hold(0, 6));
    expect(levelsOf(hold(50, 7)).at(-1)).toBe(1);
  });

  it('given a score of 49.9 in the run, then the 30 s count restarts', () => {
    const levels = levelsOf([...hold(60, 5), 49.9, ...hold(60, 7)]);
    expect(levels.slice(0, 12)).toEqual(hold(0, 12));
    expect(levels[12]).toBe(1);
  });

  it('given level 1, when the score is < 35 for 60 s, then level 0; 55 s is not enough', () => {
    const st = newSeries();
    levelsOf(hold(60, 7), st);
    expect(st.state.level).toBe(1);
    expect(levelsOf(hold(34.9, 12), copy(st))).toEqual(hold(1, 12));
    expect(levelsOf(hold(34.9, 13), st).at(-1)).toBe(0);
  });

  it('given level 1, when the score dips below 35 briefly, then the level stays (the exit run restarts)', () => {
    const st = newSeries();
    levelsOf(hold(60, 7), st);
    const levels = levelsOf([...hold(20, 10), 40, ...hold(20, 12)], st);
    expect(levels).toEqual(hold(1, 23));
    expect(levelsOf([20], st)).toEqual([0]);
  });

  it('given level 1, when the score is between 35 and 50, then it stays level 1', () => {
    const st = newSeries();
    levelsOf(hold(60, 7), st);
    expect(levelsOf(hold(40, 50), st)).toEqual(hold(1, 50));
  });

  it('given scores >= 70 held 10 s, then no level 2; 15 s, then level 2 straight from level 0', () => {
    expect(levelsOf(hold(70, 3))).toEqual([0, 0, 0]);
    expect(levelsOf(hold(70, 4))).toEqual([0, 0, 0, 2]);
  });

  it('given level 1, when the score is >= 70 for 15 s, then level 2', () => {
    const st = newSeries();
    levelsOf(hold(60, 7), st);
    expect(levelsOf(hold(75, 4), st)).toEqual([1, 1, 1, 2]);
  });

  it('given level 2, when < 55 for 120 s (but not < 35 for 60 s), then level 1; 115 s is not enough', () => {
    const st = newSeries();
    levelsOf(hold(80, 4), st);
    expect(st.state.level).toBe(2);
    const levels = levelsOf(hold(50, 25), st);
    expect(levels.slice(0, 24)).toEqual(hold(2, 24));
    expect(levels[24]).toBe(1);
  });

  it('given level 2, when the score dips below 55 and comes back before 120 s, then it stays level 2', () => {
    const st = newSeries();
    levelsOf(hold(80, 4), st);
    expect(levelsOf([...hold(40, 20), 60, ...hold(40, 20)], st)).toEqual(hold(2, 41));
  });

  it('given level 2, when < 55 for 120 s and < 35 for the last 60 s, then level 0', () => {
    const st = newSeries();
    levelsOf(hold(80, 4), st);
    const levels = levelsOf([...hold(50, 12), ...hold(30, 13)], st);
    expect(levels.at(-1)).toBe(0);
  });

  it('given a window without a score, then every run restarts', () => {
    expect(levelsOf([...hold(60, 6), null, ...hold(60, 6)])).toEqual(hold(0, 13));
    const st = newSeries();
    levelsOf(hold(60, 7), st);
    expect(levelsOf([...hold(20, 12), null, ...hold(20, 12)], st)).toEqual(hold(1, 25));
  });
});
