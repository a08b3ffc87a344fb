/**
 * The fatigue model `fatigue-v1` (docs/design.md §5): every constant of the model in one versioned,
 * frozen object. A new model is a new object with a new `model_version`; the scores record which one
 * produced them, so analysts can re-score history with another version side by side.
 *
 * All durations are milliseconds of event time (`ts`), never of the wall clock.
 */
export interface FatigueModelConfig {
  readonly model_version: string;

  // ── windows and event time (docs/design.md §4 and §5) ──
  /** Trailing window scored at each hop. */
  readonly windowMs: number;
  /** One score per hop; window ends are aligned to multiples of the hop in epoch ms. */
  readonly hopMs: number;
  /** Watermark = max ts seen − allowed lateness. */
  readonly allowedLatenessMs: number;
  /** A component is missing when its stream was silent for this long at the end of the window. */
  readonly silenceMs: number;
  /**
   * An idle session (no record for this long, measured by the runner on the partition's append-time
   * clock, per session) is flushed and ended.
   */
  readonly idleEvictMs: number;

  // ── baseline ──
  /** Personal baseline: the first minutes of each session. */
  readonly baselineMs: number;
  /** Minimum face time in the baseline period for a personal PERCLOS baseline (else the default). */
  readonly baselineMinFaceMs: number;
  /** Minimum lane-offset samples (speed above the SDLP floor) for a personal SDLP baseline. */
  readonly baselineMinSdlpSamples: number;
  /** Minimum good-quality EEG frames for an EEG baseline (else EEG stays out for the session). */
  readonly baselineMinEegFrames: number;

  // ── ocular ──
  readonly weights: {
    readonly ocular: number;
    readonly driving: number;
    readonly eeg: number;
    readonly reaction: number;
    readonly yawn: number;
  };
  /** P80: an eye counts as closed when eye_closure >= 0.8. */
  readonly eyeClosedThreshold: number;
  /** Population PERCLOS of an alert driver, used until the baseline exists. */
  readonly perclosBaselineDefault: number;
  /** PERCLOS at which the PERCLOS term saturates. */
  readonly perclosReference: number;
  /** Upper bound of a personal PERCLOS baseline, so `perclosReference − Pb` stays positive. */
  readonly perclosBaselineMax: number;
  readonly perclosWeight: number;
  readonly longBlinkWeight: number;
  /** Long blink: a closure of [min, max) ms; closures of max ms or more are microsleeps. */
  readonly longBlinkMinMs: number;
  readonly longBlinkMaxMs: number;
  /** Long-blink share at which the long-blink term saturates. */
  readonly longBlinkShareReference: number;
  /** A face frame stands for the time until the next frame, at most this long (camera drop-outs). */
  readonly maxFrameGapMs: number;

  // ── driving ──
  /** SDLP is measured only while speed > this. */
  readonly sdlpMinSpeedKmh: number;
  /** Population SDLP of an alert driver, used until the baseline exists. */
  readonly sdlpBaselineDefaultM: number;
  /** SDLP above the baseline at which the SDLP term saturates. */
  readonly sdlpScaleM: number;
  /** Minimum lane-offset samples in a window for an SDLP. */
  readonly sdlpMinSamples: number;
  readonly departureWeight: number;

  // ── EEG ──
  /** Channels with quality below this are ignored; a frame counts when one channel passes. */
  readonly eegMinQuality: number;
  /** z at which the EEG sub-score saturates. */
  readonly eegZScale: number;
  /** Floor of the baseline standard deviation of r, so a flat baseline cannot give an infinite z. */
  readonly eegStdFloor: number;

  // ── reaction ──
  readonly lapseMs: number;
  readonly lapseScale: number;

  // ── yawn ──
  readonly yawnMouthThreshold: number;
  readonly yawnMinMs: number;
  readonly yawnScale: number;

  // ── levels (hysteresis on the score series) ──
  readonly level1: {
    readonly enter: number;
    readonly enterForMs: number;
    readonly leave: number;
    readonly leaveForMs: number;
  };
  readonly level2: {
    readonly enter: number;
    readonly enterForMs: number;
    readonly leave: number;
    readonly leaveForMs: number;
  };

  // ── event-triggered alerts ──
  /** An eye closure this long is a microsleep: level-2 alert at once. */
  readonly microsleepMs: number;
  /** A microsleep alert clears after this long without another microsleep (our choice). */
  readonly microsleepClearMs: number;
  /** Face not detected this long while moving raises a level-1 alert. */
  readonly faceLostMs: number;
  /** "Moving" for the face-lost rule: speed > this. */
  readonly faceLostMinSpeedKmh: number;
  /** An unacknowledged level-2 alert escalates every this long. */
  readonly escalateEveryMs: number;
}

export const fatigueV1: FatigueModelConfig = Object.freeze({
  model_version: 'fatigue-v1',

  // docs/design.md §5: "Scores every 5 s of event time over the trailing 60 s window".
  windowMs: 60_000,
  hopMs: 5_000,
  // docs/design.md §4: watermark = max ts seen − allowed lateness (2 s).
  allowedLatenessMs: 2_000,
  // docs/design.md §5: "missing when its stream was silent for the last 10 s of the window".
  silenceMs: 10_000,
  // docs/design.md §4: "an idle session is flushed and evicted after a configurable time"; 5 min default.
  idleEvictMs: 5 * 60_000,

  // docs/design.md §5: "Baseline: the first 5 minutes of each session (event time)".
  baselineMs: 5 * 60_000,
  // Our guards (not in DESIGN): a personal baseline needs some data, else the defaults stay in use.
  baselineMinFaceMs: 30_000, // 10 % of the baseline period with a visible face
  baselineMinSdlpSamples: 100, // 10 s of lane offsets at 10 Hz above 40 km/h
  baselineMinEegFrames: 100, // 10 s of good EEG at ~10 frames/s

  // docs/design.md §5, weights of the table: ocular .40, driving .25, eeg .20, reaction .10, yawn .05.
  weights: Object.freeze({ ocular: 0.4, driving: 0.25, eeg: 0.2, reaction: 0.1, yawn: 0.05 }),
  // Wierwille 1994 / Dinges 1998: PERCLOS P80 = share of time with the eyelid >= 80 % closed.
  eyeClosedThreshold: 0.8,
  // docs/design.md §5: "Pb default 0.06"; 0.12 is the drowsy reference where the term saturates.
  perclosBaselineDefault: 0.06,
  perclosReference: 0.12,
  // Our guard: a personal baseline at or above the drowsy reference would flip the sign of the term.
  perclosBaselineMax: 0.1,
  // docs/design.md §5: ocular = 0.7 * PERCLOS term + 0.3 * long-blink term.
  perclosWeight: 0.7,
  longBlinkWeight: 0.3,
  // Anund 2017: long blink > 0.15 s; DESIGN: closures of 0.15-1 s (1 s and more is a microsleep).
  longBlinkMinMs: 150,
  longBlinkMaxMs: 1_000,
  // docs/design.md §5: clamp(longShare / 0.5).
  longBlinkShareReference: 0.5,
  // Our choice: 2.5 frame periods at 10 fps; camera drop-outs count neither as closed nor as open.
  maxFrameGapMs: 250,

  // SDLP literature / docs/design.md §5: std-dev of lane_offset_m while speed > 40 km/h.
  sdlpMinSpeedKmh: 40,
  // docs/design.md §5: "b default 0.20 m", scale /0.10.
  sdlpBaselineDefaultM: 0.2,
  sdlpScaleM: 0.1,
  // Our guard: 1 s of lane offsets at 10 Hz before an SDLP means anything.
  sdlpMinSamples: 10,
  // docs/design.md §5: "+ 0.5 per departure, capped at 1".
  departureWeight: 0.5,

  // Jap 2009 (theta+alpha)/beta; docs/design.md §5: frames with quality >= 0.5, clamp(z / 3).
  eegMinQuality: 0.5,
  eegZScale: 3,
  eegStdFloor: 0.01, // our guard, ~1 % of a typical r of 1-2

  // Basner & Dinges: PVT lapse = response >= 500 ms (plus missed stimuli); DESIGN: clamp(lapses / 3).
  lapseMs: 500,
  lapseScale: 3,

  // docs/design.md §5: yawns = rising edges of mouth_open >= 0.6 held >= 1.5 s; clamp(yawns / 3).
  yawnMouthThreshold: 0.6,
  yawnMinMs: 1_500,
  yawnScale: 3,

  // docs/design.md §5: level 1 (drowsy, ~KSS 7): enter >= 50 for 30 s, leave < 35 for 60 s;
  // level 2 (severe, ~KSS >= 8, EU 2021/1341 DDAW must warn): enter >= 70 for 15 s, leave < 55 for 120 s.
  level1: Object.freeze({ enter: 50, enterForMs: 30_000, leave: 35, leaveForMs: 60_000 }),
  level2: Object.freeze({ enter: 70, enterForMs: 15_000, leave: 55, leaveForMs: 120_000 }),

  // docs/design.md §5: "an eye closure >= 1 s raises a level-2 alert at once".
  microsleepMs: 1_000,
  // Our choice: the microsleep alert clears 60 s (one window) after the last microsleep ended.
  microsleepClearMs: 60_000,
  // docs/design.md §5: "face lost for >= 5 s while speed > 10 km/h raises a level-1 alert".
  faceLostMs: 5_000,
  faceLostMinSpeedKmh: 10,
  // docs/design.md §5: "an unacknowledged level-2 alert escalates every 30 s".
  escalateEveryMs: 30_000,
} satisfies FatigueModelConfig);

/**
 * Problems of a model config, empty when it is usable. The window arithmetic works on hop-sized
 * buckets, so the window and the silence span must be whole numbers of hops.
 */
export function configProblems(c: FatigueModelConfig): string[] {
  const problems: string[] = [];
  const positive = ['windowMs', 'hopMs', 'silenceMs', 'baselineMs', 'idleEvictMs', 'maxFrameGapMs'] as const;
  for (const k of positive)
    if (!(c[k] > 0) || !Number.isInteger(c[k])) problems.push(`${k} must be a positive integer`);
  if (c.windowMs % c.hopMs !== 0) problems.push('windowMs must be a multiple of hopMs');
  if (c.silenceMs % c.hopMs !== 0 || c.silenceMs > c.windowMs) {
    problems.push('silenceMs must be a multiple of hopMs and at most windowMs');
  }
  if (c.allowedLatenessMs < 0) problems.push('allowedLatenessMs must be >= 0');
  if (!(c.perclosBaselineMax < c.perclosReference)) problems.push('perclosBaselineMax must be below perclosReference');
  if (!(c.perclosBaselineDefault <= c.perclosBaselineMax))
    problems.push('perclosBaselineDefault must be <= perclosBaselineMax');
  const w = c.weights;
  const sum = w.ocular + w.driving + w.eeg + w.reaction + w.yawn;
  if (Math.abs(sum - 1) > 1e-9) problems.push(`weights must sum to 1 (they sum to ${sum})`);
  if (!(c.level1.leave < c.level1.enter) || !(c.level2.leave < c.level2.enter)) {
    problems.push('each level must leave below its entry threshold (hysteresis)');
  }
  return problems;
}
