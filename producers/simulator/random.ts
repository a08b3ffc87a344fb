// Math bound once per module: see `f32` in common.ts.
const { PI, cos, exp, floor, imul, log, sin, sqrt } = Math;

/**
 * A small seeded PRNG (mulberry32): the simulator must give the same events for the same seed, and
 * Math.random cannot be seeded. Statistical quality is ample for synthetic telemetry.
 */
export class Rng {
  private state: number;
  /** Box-Muller gives two independent normals per draw; the second one waits here. */
  private spare = NaN;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Normal (Box-Muller, both values used). */
  normal(mean = 0, sd = 1): number {
    let z = this.spare;
    if (z === z) {
      this.spare = NaN;
    } else {
      const r = sqrt(-2 * log(1 - this.next()));
      const a = 2 * PI * this.next();
      z = r * cos(a);
      this.spare = r * sin(a);
    }
    return mean + sd * z;
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -mean * log(1 - this.next());
  }

  /** Log-normal with the given median and log-sd. */
  lognormal(median: number, sigma: number): number {
    return median * exp(sigma * this.normal());
  }

  /** A version-4-shaped UUID drawn from this generator (16 draws, one byte each). */
  uuid(): string {
    let s = '';
    for (let i = 0; i < 16; i++) {
      let b = floor(this.next() * 256);
      if (i === 6) b = (b & 0x0f) | 0x40;
      else if (i === 8) b = (b & 0x3f) | 0x80;
      s += HEX[b]!;
      if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
    }
    return s;
  }
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** A 32-bit seed derived from a base seed and a label (FNV-1a), so sessions get independent streams. */
export function deriveSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < label.length; i++) h = imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
