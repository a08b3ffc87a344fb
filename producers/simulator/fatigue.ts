import { Rng } from './random';

// Math bound once per module: see `f32` in common.ts.
const { max, min, round } = Math;

/**
 * The latent driver state every modality of a simulated session reads: fatigue over the session
 * (from its profile) and the microsleeps, drawn once per session so the camera (eyes closed, head
 * dropping), the vehicle (no steering corrections, lane drift) and the stimuli (missed or late) agree.
 */

export type Profile = 'alert' | 'drowsy' | 'severe';
export const profiles: readonly Profile[] = ['alert', 'drowsy', 'severe'];

/** Fatigue values of the three states; `level` interpolates parameters between them. */
export const ALERT = 0.1;
const DROWSY = 0.6;
export const SEVERE = 0.95;

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
/** 0 before a, 1 after b, linear in between. */
const ramp = (t: number, a: number, b: number) => clamp01((t - a) / (b - a));

/**
 * Fatigue 0..1 at `t` (0..1 of the session): `alert` stays at 0.1; `drowsy` is alert for the first
 * 20 %, drifts to 0.6 by 60 % and stays there; `severe` is alert for the first 15 %, drowsy by 45 %,
 * severe (0.95) by 75 % and stays there. The plateaus make the end of a session a steady state.
 */
export function fatigueAt(profile: Profile, t: number): number {
  if (profile === 'alert') return ALERT;
  if (profile === 'drowsy') return ALERT + (DROWSY - ALERT) * ramp(t, 0.2, 0.6);
  return ALERT + (DROWSY - ALERT) * ramp(t, 0.15, 0.45) + (SEVERE - DROWSY) * ramp(t, 0.45, 0.75);
}

/**
 * A parameter as a function of fatigue: `alert` at 0.1 or less, `drowsy` at 0.6, `severe` at 0.95
 * or more, piecewise linear in between.
 */
export function level(f: number, alert: number, drowsy: number, severe: number): number {
  if (f <= ALERT) return alert;
  if (f <= DROWSY) return alert + ((drowsy - alert) * (f - ALERT)) / (DROWSY - ALERT);
  if (f < SEVERE) return drowsy + ((severe - drowsy) * (f - DROWSY)) / (SEVERE - DROWSY);
  return severe;
}

/** Microsleeps per minute: none when alert, rare when drowsy, several per 10 minutes when severe. */
const microsleepsPerMin = (f: number) => level(f, 0, 0.06, 0.6);
const MICROSLEEP_MIN_MS = 1_200;
const MICROSLEEP_MAX_MS = 4_000;

/**
 * The session's microsleeps, in time order: closed eyes for 1.2-4 s (so any frame-based measure
 * sees a closure of at least 1 s), with the lateral drift the car takes while nobody steers.
 */
export class Microsleeps {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** Lateral acceleration (m/s², signed) while the driver is out; the steering wheel drifts. */
  readonly drifts: number[] = [];

  /** Draws the episodes of [startTs, endTs) by thinning a Poisson process whose rate follows fatigue. */
  constructor(rng: Rng, fatigue: (ts: number) => number, startTs: number, endTs: number) {
    const maxPerMs = microsleepsPerMin(SEVERE) / 60_000;
    let t = startTs + 15_000;
    for (;;) {
      t += rng.exponential(1 / maxPerMs);
      if (t + MICROSLEEP_MAX_MS + 1_000 >= endTs) break;
      if (!rng.chance(microsleepsPerMin(fatigue(t)) / 60_000 / maxPerMs)) continue;
      const d = round(min(MICROSLEEP_MAX_MS, max(MICROSLEEP_MIN_MS, rng.lognormal(1_800, 0.35))));
      this.starts.push(round(t));
      this.ends.push(round(t) + d);
      this.drifts.push((rng.chance(0.5) ? 1 : -1) * rng.uniform(0.2, 0.45));
      t += d + 5_000;
    }
  }

  get count(): number {
    return this.starts.length;
  }

  /**
   * Index of the episode whose [start - before, end + after) contains ts, or -1 (binary search:
   * there are only a handful per hour, and callers ask in any order).
   */
  at(ts: number, before = 0, after = 0): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! - before <= ts) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && ts < this.ends[found]! + after ? found : -1;
  }

  /** The first episode whose [start - margin, end + margin) overlaps [from, to), or -1. */
  overlapping(from: number, to: number, margin: number): number {
    // Episodes are disjoint and sorted, so their ends are sorted too: find the first ending after `from`.
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! + margin <= from) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.starts.length && this.starts[lo]! - margin < to ? lo : -1;
  }
}
