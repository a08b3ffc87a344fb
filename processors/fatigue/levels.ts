import type { FatigueModelConfig } from './config';

/**
 * Level hysteresis of docs/design.md §5, driven by the score series (one score per window end, in
 * event time). A condition "score >= 50 for 30 s" holds at window end E when every score from the
 * window ending at E − 30 s through E met it (seven consecutive scores with a 5 s hop): we track,
 * per threshold, the window end at which the current run of scores meeting it started.
 *
 * A window without a score (no component present) breaks every run: nothing was measured, so
 * nothing was held. Transitions at one window end:
 * - levels 0 and 1 enter level 2 when the score was >= 70 for 15 s (level 0 may jump straight to 2);
 * - level 0 enters level 1 when the score was >= 50 for 30 s;
 * - level 2 leaves when the score was < 55 for 120 s, to level 0 if it was also < 35 for 60 s, else to 1;
 * - level 1 leaves to 0 when the score was < 35 for 60 s.
 */
export interface LevelState {
  level: 0 | 1 | 2;
  /** Window end where the current run of scores >= level2.enter began, or null. */
  enter2Since: number | null;
  enter1Since: number | null;
  /** Window end where the current run of scores < level2.leave began, or null. */
  leave2Since: number | null;
  leave1Since: number | null;
}

export const initialLevels = (): LevelState => ({
  level: 0,
  enter2Since: null,
  enter1Since: null,
  leave2Since: null,
  leave1Since: null,
});

/** Folds one window's score (null: no score) into the level state, in place; returns the new level. */
export function foldScore(s: LevelState, windowEnd: number, score: number | null, c: FatigueModelConfig): 0 | 1 | 2 {
  if (score === null) {
    s.enter2Since = s.enter1Since = s.leave2Since = s.leave1Since = null;
    return s.level;
  }
  const run = (since: number | null, holds: boolean): number | null => (holds ? (since ?? windowEnd) : null);
  s.enter2Since = run(s.enter2Since, score >= c.level2.enter);
  s.enter1Since = run(s.enter1Since, score >= c.level1.enter);
  s.leave2Since = run(s.leave2Since, score < c.level2.leave);
  s.leave1Since = run(s.leave1Since, score < c.level1.leave);
  const held = (since: number | null, forMs: number): boolean => since !== null && windowEnd - since >= forMs;

  if (s.level < 2 && held(s.enter2Since, c.level2.enterForMs)) s.level = 2;
  else if (s.level === 0 && held(s.enter1Since, c.level1.enterForMs)) s.level = 1;
  else if (s.level === 2 && held(s.leave2Since, c.level2.leaveForMs)) {
    s.level = held(s.leave1Since, c.level1.leaveForMs) ? 0 : 1;
  } else if (s.level === 1 && held(s.leave1Since, c.level1.leaveForMs)) s.level = 0;
  return s.level;
}
