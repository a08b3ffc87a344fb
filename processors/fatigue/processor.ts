import type {
  AlertEvent,
  AlertEventKind,
  AlertReason,
  Command,
  EegBandPower,
  FatigueComponents,
  FatigueFeatures,
  SessionEvent,
} from '../../schemas/types';
import { VigilError } from '../../core/errors';
import { fatigueV1, type FatigueModelConfig } from './config';
import { alertEventIdOf, alertIdOf, scoreEventIdOf } from './ids';
import { foldScore } from './levels';
import {
  addSample,
  combineScore,
  drivingSubScore,
  emptyMoments,
  eegSubScore,
  mergeMoments,
  ocularSubScore,
  reactionSubScore,
  stdOf,
  yawnSubScore,
} from './scoring';
import {
  cloneState,
  compactPending,
  type ActiveAlert,
  type Bucket,
  type FatigueInput,
  type FatigueOutput,
  type FatigueState,
  type Sample,
  type TelemetryInput,
} from './state';

/**
 * The fatigue processor (docs/design.md §4 and §5): pure and deterministic. No clock, no I/O, no
 * randomness: time is the events' `ts`, ids are hashes, so a replay of the same inputs gives
 * byte-identical outputs.
 *
 * Event time, per session:
 * - watermark = highest telemetry ts seen − 2 s. Telemetry waits in a reorder buffer until the
 *   watermark reaches it, then is processed in ts order (ties in arrival order), so out-of-order
 *   delivery within the allowed lateness changes nothing.
 * - Late: a telemetry event with ts <= the watermark at its arrival. Everything up to the watermark
 *   has been processed and windows up to it are final, so it can no longer be put in order; it is
 *   returned as `{ kind: 'late' }` for the late topic. Telemetry fed to an ended state is late too
 *   (the live runner and Replay drop an ended state at once: a later record of the same id, from its
 *   owner, starts a new life of the session, so a device resuming after idle eviction is monitored).
 * - Windows: [end − 60 s, end) with `end` a multiple of 5 s in epoch ms, from the first end after the
 *   session start; a window is emitted when the watermark reaches its end. Samples, window ends and
 *   alert timers (escalation, microsleep clearing) are processed in one event-time order (at equal
 *   times: window, then timer, then sample), so outputs do not depend on how topics interleave.
 * - Session events and commands never move the watermark. An `AcknowledgeAlert` waits in the
 *   reorder buffer like telemetry and takes effect at its own ts, in order with what happened before
 *   it (so an acknowledgement stamped just after an alert was raised finds it); one at or behind the
 *   watermark takes effect at once (commands are never late).
 * - `SessionStarted` sets the session start (the baseline's) unless something was processed already.
 *   `SessionEnded` flushes: all buffered inputs, windows up to the first one that holds the last
 *   telemetry and reaches the end, timers up to the end; then the active alerts clear with reason
 *   `session_ended` and the session is ended (telemetry fed to it later is late). A `tick` does the same for a
 *   session whose newest telemetry is `idleEvictMs` older than the tick.
 * - Windows holding no data at all (a gap in the telemetry) are skipped: they would have no score.
 *
 * Features (kept per 5 s slice, so a telemetry event costs O(1) and a window sums 12 slices):
 * - A face frame's state (face seen with an eye_closure; closed when >= 0.8) lasts until the next
 *   frame, at most 250 ms (drop-outs count as neither); PERCLOS = closed time / face time.
 * - An eye closure runs from its first closed frame to the first frame that is not closed (or the
 *   last closed frame + 250 ms across a drop-out) and counts in the window holding the frame that
 *   ended it. Mouth openings likewise; a yawn counts once, when the opening reaches 1.5 s.
 * - SDLP: population std-dev of lane_offset_m over frames with speed > 40 km/h (>= 10 of them).
 * - Presence (10 s silence rule): ocular and yawn need face frames, driving vehicle frames or lane
 *   departures, eeg EEG frames, reaction stimulus events (shown, response, missed); collisions count
 *   for nothing. A component is also missing when nothing of it was measurable over the window:
 *   ocular and yawn without any face time, eeg without a good frame or without a baseline. A present
 *   component's unmeasurable term counts 0 (driving with no SDLP: departures only).
 *
 * Alerts (see `config.ts` for the numbers):
 * - `drowsy` (level 1) is active while the level is >= 1 and `severe` (level 2) while it is 2; a jump
 *   from level 0 to 2 raises both. They clear (`recovered`) when the level drops below theirs.
 * - `microsleep` (level 2): raised by an eye closure reaching 1 s; clears 60 s after the end of the
 *   last microsleep (another microsleep meanwhile keeps it active).
 * - `face_lost` (level 1): frames without a face for >= 5 s while the vehicle moves (speed > 10 km/h,
 *   from a vehicle frame at most 10 s old); clears at the next frame with a face.
 * - Unacknowledged level-2 alerts escalate at raise + 30 s, + 60 s, ...; `AcknowledgeAlert` naming an
 *   active, unacknowledged alert of the session (same tenant) emits `AlertAcknowledged` and stops
 *   the escalation; any other acknowledgement is ignored.
 */

export interface StepResult {
  state: FatigueState;
  outputs: FatigueOutput[];
}

/**
 * The hot path: folds one input into the session state and returns the outputs it causes. The state
 * is owned by the processor: it is updated in place and returned (no copy per event, O(1) amortised
 * per telemetry event). Snapshot it with `serializeState`, or use `decide`/`evolve` for copies.
 */
export function step(state: FatigueState, input: FatigueInput, config: FatigueModelConfig = fatigueV1): StepResult {
  const out: FatigueOutput[] = [];
  const p = new Processor(state, config, out);
  switch (input.kind) {
    case 'face': {
      const e = input.event;
      p.telemetry(input, { s: 'f', ts: e.ts, fd: e.face_detected, ec: e.eye_closure, mo: e.mouth_open });
      break;
    }
    case 'vehicle': {
      const e = input.event;
      p.telemetry(input, { s: 'v', ts: e.ts, sp: e.speed_kmh, lo: e.lane_offset_m });
      break;
    }
    case 'eeg':
      p.telemetry(input, { s: 'e', ts: input.event.ts, r: eegRatioOf(input.event, config) });
      break;
    case 'game': {
      const g = input.event.event;
      const kind =
        g.type === 'LaneDeparture'
          ? 'departure'
          : g.type === 'StimulusMissed' || (g.type === 'StimulusResponse' && g.reaction_ms >= config.lapseMs)
            ? 'lapse'
            : g.type === 'StimulusShown' || g.type === 'StimulusResponse'
              ? 'stimulus'
              : 'other';
      p.telemetry(input, { s: 'g', ts: input.event.ts, g: kind });
      break;
    }
    case 'session':
      p.session(input.event);
      break;
    case 'command':
      p.command(input.event);
      break;
    case 'tick':
      p.tick(input.ts);
      break;
  }
  return { state, outputs: out };
}

/** `decide(input, state) -> events[]`, the pure shape of a processor: the outputs of one input; `state` is not touched. */
export function decide(
  input: FatigueInput,
  state: FatigueState,
  config: FatigueModelConfig = fatigueV1,
): FatigueOutput[] {
  return step(cloneState(state), input, config).outputs;
}

/** `evolve(state, event)`, the pure shape of a processor: the state after one input, as a new object. */
export function evolve(state: FatigueState, input: FatigueInput, config: FatigueModelConfig = fatigueV1): FatigueState {
  return step(cloneState(state), input, config).state;
}

/**
 * A frame's (theta+alpha)/beta (Jap 2009): the mean over its channels with quality >= 0.5 and a
 * positive beta; null when no channel qualifies.
 */
export function eegRatioOf(e: EegBandPower, config: FatigueModelConfig = fatigueV1): number | null {
  let sum = 0;
  let n = 0;
  for (const c of e.channels) {
    if (c.quality >= config.eegMinQuality && c.beta_uv2 > 0) {
      sum += (c.theta_uv2 + c.alpha_uv2) / c.beta_uv2;
      n += 1;
    }
  }
  return n === 0 ? null : sum / n;
}

const newBucket = (k: number): Bucket => ({
  k,
  faceN: 0,
  faceMs: 0,
  closedMs: 0,
  closures: 0,
  longClosures: 0,
  yawns: 0,
  drvN: 0,
  lane: emptyMoments(),
  departures: 0,
  eegN: 0,
  eegGoodN: 0,
  eegSum: 0,
  stimN: 0,
  lapses: 0,
});

interface Timer {
  t: number;
  alert: ActiveAlert;
  kind: 'clear' | 'escalate';
}

/**
 * At most this many `AlertEscalated` per step. A step that moves a session's clock far (a gap in its
 * telemetry within the accepted ts window) would otherwise emit one per 30 s of the gap; the due
 * escalations past this budget are coalesced: the count jumps, and the next escalation is emitted
 * at its regular time after the step's clock. Deterministic: the budget depends on the input only.
 */
export const MAX_ESCALATIONS_PER_STEP = 3;

/** One step's view of a state: the state, the config and the output list. */
class Processor {
  private escalationsLeft = MAX_ESCALATIONS_PER_STEP;

  constructor(
    private readonly s: FatigueState,
    private readonly c: FatigueModelConfig,
    private readonly out: FatigueOutput[],
  ) {}

  // ───────────── inputs ─────────────

  telemetry(input: TelemetryInput, sample: Sample): void {
    const s = this.s;
    this.checkSession(input.event.session_id);
    const ts = sample.ts;
    if (s.ended || (s.maxTs !== null && ts <= s.maxTs - this.c.allowedLatenessMs)) {
      this.out.push({ kind: 'late', input });
      return;
    }
    s.tenant_id ??= input.event.tenant_id;
    if (s.startTs === null) this.setStart(ts);
    this.enqueue(sample);
    if (s.maxTs === null || ts > s.maxTs) {
      s.maxTs = ts;
      const watermark = ts - this.c.allowedLatenessMs;
      this.advance(watermark, watermark, watermark);
    }
  }

  /** Inserts in ts order, after equal ts (arrival order); inputs mostly arrive in order. */
  private enqueue(sample: Sample): void {
    const buf = this.s.pending;
    let i = buf.length;
    while (i > this.s.pendingHead && buf[i - 1]!.ts > sample.ts) i--;
    if (i === buf.length) buf.push(sample);
    else buf.splice(i, 0, sample);
  }

  session(e: SessionEvent): void {
    const s = this.s;
    this.checkSession(e.session_id);
    if (s.ended) return;
    s.tenant_id ??= e.tenant_id;
    if (e.event.type === 'SessionStarted') {
      // The start may move earlier only while nothing has been processed yet.
      if (s.clock === null && (s.startTs === null || e.ts < s.startTs)) this.setStart(e.ts);
    } else {
      this.flush(e.ts);
    }
  }

  command(e: Command): void {
    const s = this.s;
    this.checkSession(e.session_id);
    if (e.event.type !== 'AcknowledgeAlert' || s.ended) return;
    const ack: Sample = { s: 'c', ts: e.ts, alert: e.event.alert_id, by: e.event.acknowledged_by, tenant: e.tenant_id };
    // A command takes effect at its event time, in order with telemetry, without moving the watermark;
    // one at or behind the watermark takes effect at once (it is never late).
    if (s.maxTs === null || e.ts <= s.maxTs - this.c.allowedLatenessMs) this.acknowledge(ack);
    else this.enqueue(ack);
  }

  private acknowledge(c: Sample & { s: 'c' }): void {
    const s = this.s;
    if (c.tenant !== s.tenant_id) return;
    const alert = s.alerts.find((a) => a.id === c.alert);
    if (!alert || alert.acknowledged) return;
    alert.acknowledged = true;
    this.emitAlert(c.ts, { type: 'AlertAcknowledged', alert_id: alert.id, acknowledged_by: c.by }, 0);
  }

  tick(ts: number): void {
    const s = this.s;
    const lastSeen = s.maxTs ?? s.startTs;
    if (s.ended || lastSeen === null || ts - lastSeen < this.c.idleEvictMs) return;
    this.flush(lastSeen);
  }

  private checkSession(sessionId: string): void {
    if (sessionId !== this.s.session_id) {
      throw new VigilError('EVENT_INVALID', `event of session ${sessionId} fed to the state of ${this.s.session_id}`, {
        details: { session_id: sessionId, state_session_id: this.s.session_id },
      });
    }
  }

  private setStart(ts: number): void {
    const s = this.s;
    s.startTs = ts;
    s.baseline.endTs = ts + this.c.baselineMs;
    s.nextEnd = this.alignDown(ts) + this.c.hopMs;
  }

  private alignDown(ts: number): number {
    return Math.floor(ts / this.c.hopMs) * this.c.hopMs;
  }

  private flush(endTs: number): void {
    const s = this.s;
    if (s.maxTs !== null) {
      // Windows up to the first that holds the last telemetry and reaches the end; timers up to the end.
      const hop = this.c.hopMs;
      const lastWindow = Math.max(this.alignDown(s.maxTs) + hop, Math.ceil(endTs / hop) * hop);
      this.advance(Infinity, lastWindow, Math.max(endTs, s.maxTs));
    }
    const clearTs = Math.max(endTs, s.maxTs ?? endTs, s.clock ?? endTs);
    for (const a of s.alerts)
      this.emitAlert(clearTs, { type: 'AlertCleared', alert_id: a.id, reason: 'session_ended' }, 0);
    s.alerts = [];
    s.ended = true;
    s.clock = clearTs;
    // An ended session keeps only what identifies it; late telemetry needs nothing more.
    s.pending = [];
    s.pendingHead = 0;
    s.buckets = [];
  }

  // ───────────── the event-time scheduler ─────────────

  /**
   * Processes, in event-time order, buffered samples with ts <= sampleLimit, window ends <= windowLimit
   * and alert timers <= timerLimit. At equal times: window, then timer, then sample (a window holds
   * samples strictly before its end; a timer fires before what happens at its instant).
   */
  private advance(sampleLimit: number, windowLimit: number, timerLimit: number): void {
    const s = this.s;
    for (;;) {
      const sample = s.pendingHead < s.pending.length ? s.pending[s.pendingHead]! : null;
      const ts = sample !== null && sample.ts <= sampleLimit ? sample.ts : Infinity;
      const tw = s.nextEnd !== null && s.nextEnd <= windowLimit ? s.nextEnd : Infinity;
      const timer = this.nextTimer();
      const tt = timer !== null && timer.t <= timerLimit ? timer.t : Infinity;
      if (ts === Infinity && tw === Infinity && tt === Infinity) break;
      if (tw <= tt && tw <= ts) {
        s.clock = tw;
        this.window(tw, windowLimit);
      } else if (tt <= ts) {
        s.clock = tt;
        this.fire(timer!, timerLimit);
      } else {
        s.clock = ts;
        s.pendingHead += 1;
        this.sample(sample!);
      }
    }
    if (s.pendingHead > 64 && s.pendingHead * 2 > s.pending.length) compactPending(s);
  }

  private nextTimer(): Timer | null {
    let best: Timer | null = null;
    for (const a of this.s.alerts) {
      if (a.clearAt !== null && (best === null || a.clearAt < best.t)) best = { t: a.clearAt, alert: a, kind: 'clear' };
      if (a.level === 2 && !a.acknowledged) {
        const t = a.raisedTs + this.c.escalateEveryMs * (a.escalations + 1);
        if (best === null || t < best.t) best = { t, alert: a, kind: 'escalate' };
      }
    }
    return best;
  }

  private fire(timer: Timer, timerLimit: number): void {
    const a = timer.alert;
    if (timer.kind === 'clear') {
      this.clearAlert(a, timer.t);
    } else if (this.escalationsLeft <= 0) {
      // Budget spent: count every escalation due up to the limit without emitting them.
      const every = this.c.escalateEveryMs;
      const due = Number.isFinite(timerLimit) ? Math.floor((timerLimit - a.raisedTs) / every) : a.escalations + 1;
      a.escalations = Math.max(a.escalations + 1, due);
    } else {
      this.escalationsLeft -= 1;
      a.escalations += 1;
      this.emitAlert(
        timer.t,
        { type: 'AlertEscalated', alert_id: a.id, level: a.level, count: a.escalations },
        a.escalations,
      );
    }
  }

  // ───────────── samples ─────────────

  private bucket(ts: number): Bucket | null {
    const k = Math.floor(ts / this.c.hopMs);
    const b = this.s.buckets;
    let i = b.length;
    while (i > 0 && b[i - 1]!.k > k) i--;
    if (i > 0 && b[i - 1]!.k === k) return b[i - 1]!;
    // Slices before the oldest window still to emit are gone: nothing may be added to them.
    const minK = this.s.nextEnd === null ? -Infinity : (this.s.nextEnd - this.c.windowMs) / this.c.hopMs;
    if (k < minK) return null;
    const nb = newBucket(k);
    b.splice(i, 0, nb);
    return nb;
  }

  private sample(x: Sample): void {
    switch (x.s) {
      case 'f':
        return this.face(x.ts, x.fd, x.ec, x.mo);
      case 'v':
        return this.vehicle(x.ts, x.sp, x.lo);
      case 'e':
        return this.eeg(x.ts, x.r);
      case 'g':
        return this.game(x.ts, x.g);
      case 'c':
        return this.acknowledge(x);
    }
  }

  private face(ts: number, detected: boolean, eyeClosure: number | null, mouthOpen: number | null): void {
    const c = this.c;
    const f = this.s.face;
    const b = this.bucket(ts);
    if (b) b.faceN += 1;

    // PERCLOS: the previous frame's state lasted until this frame, at most maxFrameGapMs.
    if (f.lastTs !== null && f.lastKind > 0)
      this.faceTime(f.lastTs, Math.min(ts, f.lastTs + c.maxFrameGapMs), f.lastKind === 2);
    const measured = detected && eyeClosure !== null;
    const kind = !measured ? 0 : eyeClosure >= c.eyeClosedThreshold ? 2 : 1;

    // Eye closures: consecutive closed frames; a gap longer than maxFrameGapMs ends the closure.
    if (f.closureStart !== null && ts - f.closureLast > c.maxFrameGapMs)
      this.endClosure(f.closureLast + c.maxFrameGapMs, ts);
    if (kind === 2) {
      if (f.closureStart === null) {
        f.closureStart = ts;
        f.closureMicro = false;
      }
      f.closureLast = ts;
      if (!f.closureMicro && ts - f.closureStart >= c.microsleepMs) this.microsleep(ts);
    } else if (f.closureStart !== null) {
      this.endClosure(ts, ts);
    }

    // Yawns: mouth_open >= 0.6 held >= 1.5 s, counted once per opening when the hold is reached.
    const open = detected && mouthOpen !== null && mouthOpen >= c.yawnMouthThreshold;
    if (f.mouthStart !== null && ts - f.mouthLast > c.maxFrameGapMs) this.endMouth(f.mouthLast + c.maxFrameGapMs, ts);
    if (open) {
      if (f.mouthStart === null) {
        f.mouthStart = ts;
        f.mouthCounted = false;
      }
      f.mouthLast = ts;
      if (!f.mouthCounted && ts - f.mouthStart >= c.yawnMinMs) this.yawn(ts);
    } else if (f.mouthStart !== null) {
      this.endMouth(ts, ts);
    }

    // Face lost while moving.
    if (!detected) {
      f.lostSince ??= ts;
      const v = this.s.vehicle;
      const moving = v.movingSince !== null && v.lastTs !== null && ts - v.lastTs <= c.silenceMs;
      if (moving && ts - Math.max(f.lostSince, v.movingSince!) >= c.faceLostMs && !this.active('face_lost')) {
        this.raise('face_lost', 1, ts, null);
      }
    } else {
      f.lostSince = null;
      const lost = this.active('face_lost');
      if (lost) this.clearAlert(lost, ts);
    }

    f.lastTs = ts;
    f.lastKind = kind;
  }

  /** Adds [from, to) of face time (closed or not) to the baseline and, unless told not to, to the slices. */
  private faceTime(from: number, to: number, closed: boolean, slices = true): void {
    const hop = this.c.hopMs;
    for (let t = from; slices && t < to;) {
      const next = Math.min(to, (Math.floor(t / hop) + 1) * hop);
      const b = this.bucket(t);
      if (b) {
        b.faceMs += next - t;
        if (closed) b.closedMs += next - t;
      }
      t = next;
    }
    const base = this.s.baseline;
    if (!base.ready && base.endTs !== null && from < base.endTs) {
      const d = Math.min(to, base.endTs) - from;
      base.faceMs += d;
      if (closed) base.closedMs += d;
    }
  }

  /** A closure ended at `end` (known at frame `at`): count it, in the slice of `at`. */
  private endClosure(end: number, at: number): void {
    const c = this.c;
    const f = this.s.face;
    const duration = end - f.closureStart!;
    const b = this.bucket(at);
    if (b) {
      b.closures += 1;
      if (duration >= c.longBlinkMinMs && duration < c.longBlinkMaxMs) b.longClosures += 1;
    }
    if (!f.closureMicro && duration >= c.microsleepMs) this.microsleep(at);
    if (f.closureMicro) {
      const alert = this.active('microsleep');
      if (alert) alert.clearAt = at + c.microsleepClearMs;
    }
    f.closureStart = null;
    f.closureMicro = false;
  }

  private microsleep(at: number): void {
    this.s.face.closureMicro = true;
    const alert = this.active('microsleep');
    if (alert) alert.clearAt = null;
    else this.raise('microsleep', 2, at, null);
  }

  private endMouth(end: number, at: number): void {
    const f = this.s.face;
    if (!f.mouthCounted && end - f.mouthStart! >= this.c.yawnMinMs) this.yawn(at);
    f.mouthStart = null;
  }

  private yawn(at: number): void {
    this.s.face.mouthCounted = true;
    const b = this.bucket(at);
    if (b) b.yawns += 1;
  }

  private vehicle(ts: number, speed: number, laneOffset: number | null): void {
    const c = this.c;
    const b = this.bucket(ts);
    const moving = speed > c.sdlpMinSpeedKmh && laneOffset !== null;
    if (b) {
      b.drvN += 1;
      if (moving) addSample(b.lane, laneOffset);
    }
    const base = this.s.baseline;
    if (moving && !base.ready && base.endTs !== null && ts < base.endTs) addSample(base.lane, laneOffset);
    const v = this.s.vehicle;
    if (v.lastTs !== null && ts - v.lastTs > c.silenceMs) v.movingSince = null;
    v.movingSince = speed > c.faceLostMinSpeedKmh ? (v.movingSince ?? ts) : null;
    v.lastTs = ts;
  }

  private eeg(ts: number, ratio: number | null): void {
    const b = this.bucket(ts);
    if (b) {
      b.eegN += 1;
      if (ratio !== null) {
        b.eegGoodN += 1;
        b.eegSum += ratio;
      }
    }
    const base = this.s.baseline;
    if (ratio !== null && !base.ready && base.endTs !== null && ts < base.endTs) addSample(base.eeg, ratio);
  }

  private game(ts: number, kind: 'departure' | 'lapse' | 'stimulus' | 'other'): void {
    const b = this.bucket(ts);
    if (!b) return;
    if (kind === 'departure') {
      b.drvN += 1;
      b.departures += 1;
    } else if (kind === 'lapse') {
      b.stimN += 1;
      b.lapses += 1;
    } else if (kind === 'stimulus') {
      b.stimN += 1;
    }
  }

  // ───────────── windows ─────────────

  private freezeBaseline(): void {
    const c = this.c;
    const base = this.s.baseline;
    // The last face frame's state lasts until the next frame, which comes at or after the end.
    const f = this.s.face;
    if (f.lastTs !== null && f.lastKind > 0 && base.endTs !== null && f.lastTs < base.endTs) {
      this.faceTime(f.lastTs, Math.min(f.lastTs + c.maxFrameGapMs, base.endTs), f.lastKind === 2, false);
    }
    base.ready = true;
    if (base.faceMs >= c.baselineMinFaceMs) base.pb = Math.min(c.perclosBaselineMax, base.closedMs / base.faceMs);
    if (base.lane.n >= c.baselineMinSdlpSamples) base.b = stdOf(base.lane);
    if (base.eeg.n >= c.baselineMinEegFrames) {
      base.eegMean = base.eeg.mean;
      base.eegStd = Math.max(c.eegStdFloor, stdOf(base.eeg));
    }
    base.lane = emptyMoments();
    base.eeg = emptyMoments();
  }

  /** Scores the window ending at `end` (if any component is present) and applies levels and alerts. */
  private window(end: number, windowLimit: number): void {
    const s = this.s;
    const c = this.c;
    const hop = c.hopMs;
    if (!s.baseline.ready && s.baseline.endTs !== null && end >= s.baseline.endTs) this.freezeBaseline();

    const kEnd = end / hop;
    const kStart = kEnd - c.windowMs / hop;
    const kRecent = kEnd - c.silenceMs / hop;
    const f = s.face;
    const openFace =
      f.lastTs !== null && f.lastKind > 0 && f.lastTs < end && f.lastTs + c.maxFrameGapMs > end - c.windowMs;

    let faceMs = 0,
      closedMs = 0,
      closures = 0,
      longClosures = 0,
      yawns = 0,
      departures = 0,
      eegGoodN = 0,
      eegSum = 0,
      lapses = 0;
    let faceRecent = false,
      drvRecent = false,
      eegRecent = false,
      stimRecent = false,
      any = openFace;
    const lane = emptyMoments();
    for (const b of s.buckets) {
      if (b.k < kStart || b.k >= kEnd) continue;
      any = true;
      faceMs += b.faceMs;
      closedMs += b.closedMs;
      closures += b.closures;
      longClosures += b.longClosures;
      yawns += b.yawns;
      departures += b.departures;
      mergeMoments(lane, b.lane);
      eegGoodN += b.eegGoodN;
      eegSum += b.eegSum;
      lapses += b.lapses;
      if (b.k >= kRecent) {
        faceRecent ||= b.faceN > 0;
        drvRecent ||= b.drvN > 0;
        eegRecent ||= b.eegN > 0;
        stimRecent ||= b.stimN > 0;
      }
    }

    if (!any) {
      // Nothing in this window: no score, and none until the window holding the next data.
      foldScore(s.levels, end, null, c);
      const next = this.nextDataTs();
      s.nextEnd = Math.max(end + hop, this.alignDown(next ?? windowLimit) + hop);
      this.prune();
      return;
    }

    if (openFace) {
      // The last frame's state lasts until the next frame (after the watermark, so after `end`).
      const from = Math.max(f.lastTs!, end - c.windowMs);
      const to = Math.min(f.lastTs! + c.maxFrameGapMs, end);
      faceMs += to - from;
      if (f.lastKind === 2) closedMs += to - from;
    }

    const base = s.baseline;
    const perclos = faceMs > 0 ? closedMs / faceMs : null;
    const longShare = closures > 0 ? longClosures / closures : null;
    const sdlp = lane.n >= c.sdlpMinSamples ? stdOf(lane) : null;
    const eegRatio = eegGoodN > 0 ? eegSum / eegGoodN : null;
    const eegZ =
      eegRatio !== null && base.eegMean !== null && base.eegStd !== null
        ? (eegRatio - base.eegMean) / base.eegStd
        : null;

    const faceSeen = faceRecent && perclos !== null;
    const components: FatigueComponents = {
      ocular: faceSeen ? ocularSubScore(perclos, longShare, base.pb, c) : null,
      driving: drvRecent ? drivingSubScore(sdlp, departures, base.b, c) : null,
      eeg: eegRecent && eegZ !== null ? eegSubScore(eegZ, c) : null,
      reaction: stimRecent ? reactionSubScore(lapses, c) : null,
      yawn: faceSeen ? yawnSubScore(yawns, c) : null,
    };
    const score = combineScore(components, c);
    const before = s.levels.level;
    const level = foldScore(s.levels, end, score, c);

    if (score !== null) {
      const features: FatigueFeatures = {
        perclos,
        long_blink_share: longShare,
        sdlp_m: sdlp,
        lane_departures: departures,
        eeg_ratio: eegRatio,
        eeg_ratio_z: eegZ,
        lapses,
        yawns,
      };
      this.out.push({
        kind: 'score',
        event: {
          event_id: scoreEventIdOf(c.model_version, s.session_id, end),
          tenant_id: s.tenant_id ?? '',
          session_id: s.session_id,
          ts: end,
          window_start_ts: end - c.windowMs,
          window_end_ts: end,
          score,
          level,
          components,
          features,
          baseline_ready: base.ready,
          model_version: c.model_version,
        },
      });
    }

    if (level !== before) {
      // drowsy is active while level >= 1, severe while level == 2: clears first, then raises.
      const drowsy = this.active('drowsy');
      const severe = this.active('severe');
      if (severe && level < 2) this.clearAlert(severe, end);
      if (drowsy && level < 1) this.clearAlert(drowsy, end);
      if (!drowsy && level >= 1) this.raise('drowsy', 1, end, score);
      if (!severe && level === 2) this.raise('severe', 2, end, score);
    }

    s.nextEnd = end + hop;
    this.prune();
  }

  /** Earliest event time of data not yet in any emitted window: slices kept, the open face frame, the buffer. */
  private nextDataTs(): number | null {
    const s = this.s;
    let t: number | null = s.buckets.length > 0 ? s.buckets[0]!.k * this.c.hopMs : null;
    const f = s.face;
    if (f.lastTs !== null && f.lastKind > 0 && (t === null || f.lastTs < t)) t = f.lastTs;
    const head = s.pendingHead < s.pending.length ? s.pending[s.pendingHead]!.ts : null;
    if (head !== null && (t === null || head < t)) t = head;
    return t;
  }

  /** Drops the slices no window still to emit will read. */
  private prune(): void {
    const s = this.s;
    const minK = (s.nextEnd! - this.c.windowMs) / this.c.hopMs;
    let n = 0;
    while (n < s.buckets.length && s.buckets[n]!.k < minK) n++;
    if (n > 0) s.buckets.splice(0, n);
  }

  // ───────────── alerts ─────────────

  private active(reason: AlertReason): ActiveAlert | undefined {
    return this.s.alerts.find((a) => a.reason === reason);
  }

  private raise(reason: AlertReason, level: 1 | 2, ts: number, score: number | null): void {
    const s = this.s;
    const id = alertIdOf(this.c.model_version, s.session_id, reason, ts);
    s.alerts.push({ id, reason, level, raisedTs: ts, acknowledged: false, escalations: 0, clearAt: null });
    this.emitAlert(ts, { type: 'AlertRaised', alert_id: id, level, reason, score }, 0);
  }

  private clearAlert(alert: ActiveAlert, ts: number): void {
    this.s.alerts = this.s.alerts.filter((a) => a !== alert);
    this.emitAlert(ts, { type: 'AlertCleared', alert_id: alert.id, reason: 'recovered' }, 0);
  }

  private emitAlert(ts: number, event: AlertEventKind, seq: number): void {
    const s = this.s;
    const alert: AlertEvent = {
      event_id: alertEventIdOf(event.alert_id, event.type, seq),
      tenant_id: s.tenant_id ?? '',
      session_id: s.session_id,
      ts,
      event,
    };
    this.out.push({ kind: 'alert', event: alert });
  }
}
