import type { FatigueComponents } from '../../schemas/types';
import type { FatigueModelConfig } from './config';

/**
 * The sub-score formulas of docs/design.md §5, one pure function per row of the table. Inputs are
 * window features; outputs are 0..1. A feature that could not be measured (null) contributes 0 to
 * its term; whether the whole component is present is decided by the window (silence rule).
 */

export const clamp01 = (x: number): number => (x <= 0 ? 0 : x >= 1 ? 1 : x);

/** Ocular: 0.7 * clamp((P - Pb) / (0.12 - Pb)) + 0.3 * clamp(longShare / 0.5). */
export function ocularSubScore(
  perclos: number | null,
  longBlinkShare: number | null,
  pb: number,
  c: FatigueModelConfig,
): number {
  const p = perclos === null ? 0 : clamp01((perclos - pb) / (c.perclosReference - pb));
  const l = longBlinkShare === null ? 0 : clamp01(longBlinkShare / c.longBlinkShareReference);
  return c.perclosWeight * p + c.longBlinkWeight * l;
}

/** Driving: clamp((SDLP - b) / 0.10) + 0.5 per departure, capped at 1. */
export function drivingSubScore(sdlp: number | null, departures: number, b: number, c: FatigueModelConfig): number {
  const s = sdlp === null ? 0 : clamp01((sdlp - b) / c.sdlpScaleM);
  return Math.min(1, s + c.departureWeight * departures);
}

/** EEG: clamp(z / 3), z of the window's mean (theta+alpha)/beta against the session baseline. */
export function eegSubScore(z: number, c: FatigueModelConfig): number {
  return clamp01(z / c.eegZScale);
}

/** Reaction: clamp(lapses / 3). */
export function reactionSubScore(lapses: number, c: FatigueModelConfig): number {
  return clamp01(lapses / c.lapseScale);
}

/** Yawn: clamp(yawns / 3). */
export function yawnSubScore(yawns: number, c: FatigueModelConfig): number {
  return clamp01(yawns / c.yawnScale);
}

/**
 * score = 100 * weighted sum of the present components, the weights renormalised over them, rounded
 * to one decimal; null when no component is present.
 */
export function combineScore(components: FatigueComponents, c: FatigueModelConfig): number | null {
  let sum = 0;
  let weight = 0;
  for (const key of ['ocular', 'driving', 'eeg', 'reaction', 'yawn'] as const) {
    const value = components[key];
    if (value === null) continue;
    sum += c.weights[key] * value;
    weight += c.weights[key];
  }
  return weight === 0 ? null : roundTo((100 * sum) / weight, 1);
}

/** Half away from zero at `digits` decimals (scores and features are non-negative in practice). */
export function roundTo(x: number, digits: number): number {
  const f = 10 ** digits;
  const r = Math.round(Math.abs(x) * f) / f;
  return x < 0 ? -r : r;
}

/** Running count / mean / sum of squared deviations (Welford), mergeable (Chan et al.). */
export interface Moments {
  n: number;
  mean: number;
  m2: number;
}

export const emptyMoments = (): Moments => ({ n: 0, mean: 0, m2: 0 });

export function addSample(m: Moments, x: number): void {
  m.n += 1;
  const d = x - m.mean;
  m.mean += d / m.n;
  m.m2 += d * (x - m.mean);
}

export function mergeMoments(into: Moments, other: Moments): void {
  if (other.n === 0) return;
  if (into.n === 0) {
    into.n = other.n;
    into.mean = other.mean;
    into.m2 = other.m2;
    return;
  }
  const n = into.n + other.n;
  const d = other.mean - into.mean;
  into.mean += (d * other.n) / n;
  into.m2 += other.m2 + (d * d * into.n * other.n) / n;
  into.n = n;
}

/** Population standard deviation. */
export const stdOf = (m: Moments): number => (m.n > 0 ? Math.sqrt(Math.max(0, m.m2) / m.n) : 0);
