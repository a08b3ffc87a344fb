import { f32, clamp, Ar1, type SessionContext, type SimEvent, type Stream } from './common';
import { level, SEVERE } from './fatigue';
import { Rng } from './random';

// Math bound once per module: see `f32` in common.ts.
const { PI, exp, floor, log, max, min, round, sin } = Math;

/** Camera frames per second (docs/design.md §2: 10-30/s). */
export const FACE_HZ = 15;
const DT_S = 1 / FACE_HZ;

/**
 * Eye closure at or above this is "closed" (PERCLOS P80). A blink's closed phase stays at or above
 * 0.82 and its ramps below 0.78, so sampled frames see exactly the blink's closed time.
 */
export const CLOSED = 0.8;
/** A yawn holds mouth_open at or above this for 1.5-4 s (docs/design.md §5). */
export const YAWN_OPEN = 0.6;

/** Microsleep eyelid ramps (ms): closing before the episode, opening after it. */
const MS_RAMP_IN = 250;
const MS_RAMP_OUT = 200;
/** The head snaps back this long (ms) after a nod or a microsleep. */
const SNAP_MS = 250;

/** Rates per minute, each a function of fatigue. */
const blinkRateGain = (f: number) => level(f, 0, 4, 9);
const clusterP = (f: number) => level(f, 0.04, 0.2, 0.35);
const longBlinkP = (f: number) => level(f, 0.03, 0.2, 0.55);
const yawnsPerMin = (f: number) => level(f, 0.05, 0.3, 0.6);
const talksPerMin = (f: number) => level(f, 1.0, 0.6, 0.3);
const nodsPerMin = (f: number) => level(f, 0, 0.6, 2);
const glancesPerMin = (f: number) => level(f, 4, 2.5, 1.2);
/** Rare face-lost gaps (0.5-3 s) and single frames where the detector misses the face. */
const GAPS_PER_MIN = 0.1;
const DROPOUT_P = 0.004;

const MOUTH_NONE = 0;
const MOUTH_YAWN = 1;
const MOUTH_TALK = 2;

/**
 * Camera frames at 15/s (frame `seq` at start + round((seq + 1) * 1000 / 15) ms): eye closure with
 * blinks (100-300 ms, 15-20/min when alert) that lengthen and cluster with fatigue, long blinks
 * (0.2-0.9 s) and the session's microsleeps (>= 1.2 s closed, head dropping); yawns (mouth >= 0.6
 * for 1.7-3.8 s) and short non-yawn mouth movements; head pose with mirror glances and, with fatigue,
 * a drooping head and nods; rare face-lost gaps and single missed frames (measures null).
 *
 * Each feature is a renewal process whose next occurrence (start and shape) is drawn when the
 * previous one ends, so a frame costs a few comparisons and no allocation beyond the event itself.
 */
export class FaceStream implements Stream {
  ts: number;
  private seq = 0;
  private readonly frames: number;

  // Per-session traits.
  private readonly blinkRate0: number;
  private readonly droopOffset: number;
  private readonly pitchOffset: number;
  private readonly yawOffset: number;

  // Slow wander of the open eyelid and the head.
  private readonly droop: Ar1;
  private readonly pitch: Ar1;
  private readonly yaw: Ar1;
  private readonly roll: Ar1;

  // The current or next blink: starts at bStart, ramps to closed in bClose, stays closed bHold, reopens in bOpen.
  private bStart = 0;
  private bClose = 0;
  private bHold = 0;
  private bOpen = 0;
  private bPeak = 0;
  private bEnd = -Infinity;

  // The current or next mouth movement (yawn or talk).
  private mKind = MOUTH_NONE;
  private mStart = 0;
  private mRise = 0;
  private mHold = 0;
  private mFall = 0;
  private mPeak = 0;
  private mEnd = -Infinity;

  // The current or next nod: the head sinks by nAmp degrees over nRise, then snaps back.
  private nStart = 0;
  private nRise = 0;
  private nAmp = 0;
  private nEnd = -Infinity;

  // The current or next mirror glance.
  private gStart = 0;
  private gDwell = 0;
  private gYaw = 0;
  private gPitch = 0;
  private gEnd = -Infinity;

  // Face-lost gap.
  private gapStart: number;
  private gapEnd = 0;
  private inGap = false;

  constructor(
    private readonly ctx: SessionContext,
    private readonly rng: Rng,
    private readonly ids: Rng,
    private readonly deviceId: string,
  ) {
    this.frames = floor((ctx.durationMs * FACE_HZ) / 1000);
    this.ts = this.tsOf(0);
    this.blinkRate0 = rng.uniform(16, 19);
    this.droopOffset = rng.uniform(-0.03, 0.03);
    this.pitchOffset = rng.normal(0, 2);
    this.yawOffset = rng.normal(0, 2);
    this.droop = new Ar1(0, 5, 0.03, DT_S);
    this.pitch = new Ar1(0, 2, 1.5, DT_S);
    this.yaw = new Ar1(0, 1, 2.5, DT_S);
    this.roll = new Ar1(0, 3, 1.5, DT_S);
    this.gapStart = ctx.startTs + rng.exponential(60_000 / GAPS_PER_MIN);
    this.firstBlink();
  }

  private tsOf(seq: number): number {
    return seq < this.frames ? this.ctx.startTs + round(((seq + 1) * 1000) / FACE_HZ) : Infinity;
  }

  take(): SimEvent {
    const { ctx, rng, ts: t } = this;
    const f = ctx.fatigue(t);
    while (t >= this.bEnd) this.nextBlink();
    while (t >= this.mEnd) this.nextMouth(t);
    while (t >= this.nEnd) this.nextNod(t);
    while (t >= this.gEnd) this.nextGlance(t);
    // Draw every frame's noise whether or not the face is seen, so the streams stay aligned.
    this.droop.step(rng.normal());
    this.pitch.step(rng.normal());
    this.yaw.step(rng.normal());
    this.roll.step(rng.normal());
    const eyeNoise = rng.normal(0, 0.012);
    const mouthNoise = rng.normal(0, 0.01);
    const dropout = rng.next() < DROPOUT_P;

    // Mouth and the squint that comes with a yawn.
    let mouth = clamp(0.05 + mouthNoise, 0, 0.3);
    let yawnEnvelope = 0;
    const inMouth = t >= this.mStart && t < this.mEnd;
    if (inMouth) {
      let u = t - this.mStart;
      if (this.mKind === MOUTH_YAWN) {
        if (u < this.mRise) {
          yawnEnvelope = u / this.mRise;
          mouth = mouth + (0.58 - mouth) * yawnEnvelope;
        } else if ((u -= this.mRise) < this.mHold) {
          yawnEnvelope = 1;
          mouth = 0.62 + (this.mPeak - 0.62) * sin((PI * u) / this.mHold);
        } else {
          yawnEnvelope = 1 - (u - this.mHold) / this.mFall;
          mouth = mouth + (0.58 - mouth) * yawnEnvelope;
        }
      } else if (this.mKind === MOUTH_TALK) {
        mouth = mouth + (this.mPeak - mouth) * sin((PI * u) / this.mRise);
      }
    }

    // Eyes: the open lid droops with fatigue; blinks and microsleeps close it.
    const open = clamp(level(f, 0.12, 0.3, 0.45) + this.droopOffset + this.droop.value + eyeNoise, 0.02, 0.7);
    let eye = min(0.75, open + 0.25 * yawnEnvelope);
    const inBlink = t >= this.bStart && t < this.bEnd;
    if (inBlink) {
      let u = t - this.bStart;
      if (u < this.bClose) eye = max(eye, open + ((0.78 - open) * u) / this.bClose);
      else if ((u -= this.bClose) < this.bHold) eye = 0.82 + (this.bPeak - 0.82) * sin((PI * u) / this.bHold);
      else eye = max(eye, 0.78 - ((0.78 - open) * (u - this.bHold)) / this.bOpen);
    }
    let pitch = level(f, 0, 3, 6) + this.pitchOffset + this.pitch.value;
    let roll = this.roll.value;
    const ms = ctx.microsleeps.at(t, MS_RAMP_IN, MS_RAMP_OUT + SNAP_MS);
    if (ms >= 0) {
      const start = ctx.microsleeps.starts[ms]!;
      const end = ctx.microsleeps.ends[ms]!;
      const side = ctx.microsleeps.drifts[ms]! > 0 ? 1 : -1;
      if (t < start) eye = max(eye, open + ((0.78 - open) * (t - (start - MS_RAMP_IN))) / MS_RAMP_IN);
      else if (t < end) eye = clamp(0.93 + 2 * eyeNoise, 0.83, 1);
      else if (t < end + MS_RAMP_OUT) eye = max(eye, 0.78 - ((0.78 - open) * (t - end)) / MS_RAMP_OUT);
      // The head sinks while asleep and snaps back on waking.
      const sink = t < start ? 0 : t < end ? min(1, (t - start) / 1500) : max(0, 1 - (t - end) / SNAP_MS);
      pitch += 18 * sink;
      roll += 6 * side * sink;
    }

    // Nods and glances.
    if (t >= this.nStart && t < this.nEnd) {
      const u = t - this.nStart;
      pitch += u < this.nRise ? this.nAmp * (u / this.nRise) ** 2 : this.nAmp * (1 - (u - this.nRise) / SNAP_MS);
    }
    let yaw = this.yawOffset + this.yaw.value;
    if (t >= this.gStart && t < this.gEnd) {
      const u = t - this.gStart;
      const g = u < 150 ? u / 150 : u < 150 + this.gDwell ? 1 : 1 - (u - 150 - this.gDwell) / 150;
      yaw += this.gYaw * g;
      pitch += this.gPitch * g;
    }

    // Detection: a face-lost gap starts only while the eyes are open and nothing else is going on,
    // and never ends mid-blink, so every closure the camera reports is whole.
    const busy = inBlink || ms >= 0 || (inMouth && this.mKind === MOUTH_YAWN);
    if (!this.inGap && t >= this.gapStart) {
      const length = rng.uniform(500, 3_000);
      const yawnSoon = this.mKind === MOUTH_YAWN && this.mEnd > t && this.mStart < t + length + 1_000;
      if (!busy && !yawnSoon && ctx.microsleeps.overlapping(t, t + length, 1_000) < 0) {
        this.inGap = true;
        this.gapEnd = t + length;
      } else this.gapStart = t + 5_000;
    }
    if (this.inGap && t >= this.gapEnd && !inBlink) {
      this.inGap = false;
      this.gapStart = t + rng.exponential(60_000 / GAPS_PER_MIN);
    }
    const detected = !this.inGap && !(dropout && !busy);

    const event: SimEvent = {
      topic: 'face',
      event: {
        event_id: this.ids.uuid(),
        tenant_id: ctx.tenantId,
        session_id: ctx.sessionId,
        device_id: this.deviceId,
        seq: this.seq,
        ts: t,
        face_detected: detected,
        eye_closure: detected ? f32(eye) : null,
        mouth_open: detected ? f32(clamp(mouth, 0, 1)) : null,
        head_pitch_deg: detected ? f32(pitch) : null,
        head_yaw_deg: detected ? f32(yaw) : null,
        head_roll_deg: detected ? f32(roll) : null,
      },
    };
    this.ts = this.tsOf(++this.seq);
    return event;
  }

  private firstBlink(): void {
    this.drawBlinkShape(this.ctx.fatigue(this.ctx.startTs));
    this.bStart = this.ctx.startTs + this.rng.uniform(200, 60_000 / this.blinkRate0);
    this.placeBlink();
  }

  /**
   * Draws the blink after the current one. Intervals are log-normal around 60 / rate s; with fatigue
   * the rate rises and some blinks follow the previous one closely (clusters).
   */
  private nextBlink(): void {
    const { rng } = this;
    const prevStart = this.bStart;
    const prevEnd = this.bEnd;
    const f = this.ctx.fatigue(prevStart);
    const meanInterval = 60_000 / (this.blinkRate0 + blinkRateGain(f));
    const pc = clusterP(f);
    let start: number;
    if (rng.chance(pc)) start = prevEnd + rng.uniform(150, 500);
    else {
      const clustered = pc * (prevEnd - prevStart + 325);
      const median = (meanInterval - clustered) / (1 - pc) / exp(0.08);
      start = max(prevStart + rng.lognormal(median, 0.4), prevEnd + 150);
    }
    this.drawBlinkShape(this.ctx.fatigue(start));
    this.bStart = start;
    this.placeBlink();
  }

  private drawBlinkShape(f: number): void {
    const { rng } = this;
    this.bHold = rng.chance(longBlinkP(f))
      ? exp(rng.uniform(log(200), log(900)))
      : clamp(rng.lognormal(115 * (1 + 0.15 * (f - 0.1)), 0.22), 100, 300);
    this.bClose = rng.uniform(40, 70) * (1 + f);
    this.bOpen = rng.uniform(70, 130) * (1 + 1.2 * f);
    this.bPeak = rng.uniform(0.9, 1);
  }

  /** Sets bEnd, moving the blink past a microsleep it would overlap. */
  private placeBlink(): void {
    const total = this.bClose + this.bHold + this.bOpen;
    const ms = this.ctx.microsleeps.overlapping(this.bStart, this.bStart + total, 600);
    if (ms >= 0) this.bStart = this.ctx.microsleeps.ends[ms]! + 600 + this.rng.uniform(0, 1_000);
    this.bEnd = this.bStart + total;
  }

  /** Next yawn or talk (competing Poisson processes, thinned to follow fatigue). */
  private nextMouth(now: number): void {
    const { rng } = this;
    const from = max(now, this.mEnd + (this.mKind === MOUTH_YAWN ? 8_000 : 1_000));
    const maxRate = yawnsPerMin(SEVERE) + talksPerMin(0);
    let start = from + rng.exponential(60_000 / maxRate);
    const f = this.ctx.fatigue(start);
    const u = rng.next() * maxRate;
    const yr = yawnsPerMin(f);
    this.mKind = u < yr ? MOUTH_YAWN : u < yr + talksPerMin(f) ? MOUTH_TALK : MOUTH_NONE;
    if (this.mKind === MOUTH_YAWN) {
      this.mRise = rng.uniform(500, 1_100);
      this.mHold = rng.uniform(1_700, 3_800);
      this.mFall = rng.uniform(600, 1_200);
      this.mPeak = rng.uniform(0.72, 0.95);
    } else {
      this.mRise = rng.uniform(300, 1_200);
      this.mHold = 0;
      this.mFall = 0;
      this.mPeak = rng.uniform(0.2, 0.68);
    }
    const length = this.mRise + this.mHold + this.mFall;
    if (this.mKind === MOUTH_YAWN) {
      // Not during a microsleep or a face-lost gap, so the camera sees every yawn whole.
      const ms = this.ctx.microsleeps.overlapping(start, start + length, 1_000);
      if (ms >= 0) start = this.ctx.microsleeps.ends[ms]! + 1_000;
      if (this.inGap && start < this.gapEnd + 1_000) start = this.gapEnd + 1_000;
    }
    this.mStart = start;
    this.mEnd = start + length;
  }

  private nextNod(now: number): void {
    const { rng } = this;
    const maxRate = nodsPerMin(SEVERE);
    const start = max(now, this.nEnd + 2_000) + rng.exponential(60_000 / maxRate);
    const real = rng.next() * maxRate < nodsPerMin(this.ctx.fatigue(start));
    this.nRise = rng.uniform(800, 2_000);
    this.nAmp =
      real && this.ctx.microsleeps.overlapping(start, start + this.nRise + SNAP_MS, 1_000) < 0
        ? rng.uniform(10, 22)
        : 0;
    this.nStart = start;
    this.nEnd = start + this.nRise + SNAP_MS;
  }

  private nextGlance(now: number): void {
    const { rng } = this;
    const maxRate = glancesPerMin(0);
    const start = max(now, this.gEnd + 1_000) + rng.exponential(60_000 / maxRate);
    const where = rng.next();
    this.gDwell = rng.uniform(300, 900);
    const real =
      rng.next() * maxRate < glancesPerMin(this.ctx.fatigue(start)) &&
      this.ctx.microsleeps.overlapping(start, start + this.gDwell + 300, 500) < 0;
    this.gYaw = !real
      ? 0
      : where < 0.4
        ? -rng.uniform(25, 40)
        : where < 0.75
          ? rng.uniform(20, 35)
          : rng.uniform(12, 20);
    this.gPitch = real && where >= 0.75 ? -rng.uniform(3, 6) : 0;
    this.gStart = start;
    this.gEnd = start + this.gDwell + 300;
  }
}
