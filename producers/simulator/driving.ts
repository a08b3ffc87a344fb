import type { GameEventKind } from '../../schemas/types';
import { f32, clamp, Ar1, type SessionContext, type SimEvent, type Stream } from './common';
import { level } from './fatigue';
import { Rng } from './random';

// Math bound once per module: see `f32` in common.ts.
const { PI, abs, exp, floor, max, min, round, sign, sqrt } = Math;

/** Vehicle frames per second (docs/design.md §2: ~10/s). */
export const VEHICLE_HZ = 10;
const DT_S = 1 / VEHICLE_HZ;
/** The game reports a lane departure when |lane_offset_m| exceeds this, once per excursion. */
export const LANE_DEPARTURE_M = 1.5;
/** ... and is ready to report the next one once the car is back within this. */
export const LANE_REARM_M = 1.0;
/** Beyond this the car hits the guardrail (a Collision), bounces back and loses speed. */
const ROAD_EDGE_M = 2.6;
/** PVT-style stimuli: one every 20-40 s; no response within this is a StimulusMissed. */
export const STIMULUS_TIMEOUT_MS = 3_000;
const STIMULUS_EVERY_MS: [number, number] = [20_000, 40_000];
/** The car accelerates from standstill over this long at the start of the session. */
const LAUNCH_MS = 12_000;
/** Steering wheel degrees per m/s² of lateral acceleration at speed v (m/s): wheelbase 2.7 m, ratio 15. */
const steerGain = (v: number) => (180 / PI) * ((2.7 * 15) / max(v, 8) ** 2);
/** Steering wheel degrees that follow a road curvature (1/m). */
const ROAD_STEER = (180 / PI) * 2.7 * 15;

/** Lateral control as a function of fatigue: slower, less damped corrections, more wander. */
const wanderPeriodS = (f: number) => level(f, 6, 8, 10);
const damping = (f: number) => level(f, 0.75, 0.6, 0.45);
const sdlpGain = (f: number) => level(f, 0, 0.07, 0.2);
/** Reaction time model: median shift, ex-Gaussian tail, lapses and misses rise with fatigue. */
const rtShift = (f: number) => level(f, 0, 45, 90);
const rtTail = (f: number) => level(f, 15, 35, 60);
const lapseP = (f: number) => level(f, 0.005, 0.05, 0.12);
const missP = (f: number) => level(f, 0, 0.03, 0.1);
/** Share of missed stimuli (a braking car ahead) that end in a rear-end collision. */
const REAR_END_P = 0.15;

interface Pending {
  ts: number;
  event: GameEventKind;
}

/**
 * The simulator rig: the car (vehicle frames at 10/s, frame `seq` at start + (seq + 1) * 100 ms) and
 * the game's events, which come from the same state, so a LaneDeparture is reported at the ts of the
 * first vehicle frame beyond 1.5 m with that frame's offset.
 *
 * Lateral position is a driver-controlled damped oscillator driven by white disturbance: the driver's
 * correction -ω²x - 2ζωv is the lateral acceleration the steering produces, so steering_deg follows
 * the corrections (plus the road's curvature). Its stationary SD (the SDLP) is set per session:
 * 0.15-0.18 m alert, 0.07 m more when drowsy, 0.2 m more when severe; during a microsleep nobody
 * corrects and the car drifts (0.2-0.45 m/s²), then the driver over-corrects. Beyond 2.6 m the car
 * hits the guardrail. Speed wanders slowly around a per-session cruise speed (88-102 km/h, kept
 * within 78-112) after a 12-s launch from standstill, and drops after a collision.
 *
 * Stimuli (PVT-style) come every 20-40 s; the response time is log-normal around a per-session
 * 255-315 ms plus an exponential tail, both growing with fatigue, with lapses (500-2500 ms) and
 * misses (StimulusMissed after 3 s, sometimes followed by a rear-end Collision) more frequent.
 */
export class Driving {
  readonly vehicle: Stream;
  readonly game: Stream;

  // The next vehicle frame, computed ahead so the game knows what it will report at that ts.
  private vSeq = 0;
  private vTs: number;
  private readonly frames: number;
  private speed = 0;
  private x: number;
  private vLat = 0;
  private steer = 0;
  private armed = true;
  private recoverUntil = -Infinity;

  // Per-session traits and slow processes.
  private readonly cruise: number;
  private readonly sdlp0: number;
  private readonly rt0: number;
  private readonly cruiseWander: Ar1;
  private readonly curvature: Ar1;

  // Game events waiting for their time, sorted by ts (a handful at most).
  private readonly queue: Pending[] = [];
  private gSeq = 0;

  constructor(
    private readonly ctx: SessionContext,
    private readonly rng: Rng,
    private readonly vehicleIds: Rng,
    private readonly gameIds: Rng,
    private readonly vehicleDevice: string,
    private readonly gameDevice: string,
  ) {
    this.frames = floor((ctx.durationMs * VEHICLE_HZ) / 1000);
    this.cruise = rng.uniform(88, 102);
    this.sdlp0 = rng.uniform(0.15, 0.18);
    this.rt0 = rng.uniform(255, 315);
    this.cruiseWander = new Ar1(rng.normal(), 45, 1, DT_S);
    this.curvature = new Ar1(rng.normal(0, 1 / 4_000), 20, 1 / 4_000, DT_S);
    this.x = rng.normal(0, 0.1);
    this.scheduleStimulus(ctx.startTs);
    this.vTs = this.tsOf(0);
    if (this.frames > 0) this.computeFrame();

    this.vehicle = new VehicleView(this);
    this.game = new GameView(this);
  }

  /** Time of the next vehicle frame (Infinity when done). */
  get vehicleTs(): number {
    return this.vTs;
  }

  /** Time of the next game event (Infinity while none is due; vehicle frames may still add some). */
  get gameTs(): number {
    return this.queue.length ? this.queue[0]!.ts : Infinity;
  }

  private tsOf(seq: number): number {
    return seq < this.frames ? this.ctx.startTs + round(((seq + 1) * 1000) / VEHICLE_HZ) : Infinity;
  }

  /** Advances the car to the frame at vTs, queueing what the game reports at that time. */
  private computeFrame(): void {
    const { ctx, rng } = this;
    const t = this.vTs;
    const f = ctx.fatigue(t);

    // Speed: a slow wander around the session's cruise speed, after a launch from standstill.
    this.cruiseWander.step(rng.normal());
    let target = clamp(this.cruise + 4 * (1 + 0.5 * f) * this.cruiseWander.value, 78, 112);
    const sinceStart = t - ctx.startTs;
    if (sinceStart < LAUNCH_MS) {
      const u = sinceStart / LAUNCH_MS;
      target *= u * u * (3 - 2 * u);
    }
    this.speed = max(0, this.speed + (target - this.speed) * (1 - exp(-DT_S / 1.5)) + rng.normal(0, 0.15));
    const v = this.speed / 3.6;
    const kappa = this.curvature.step(rng.normal());

    // Lateral: the driver's correction (or a microsleep's drift) plus disturbance.
    const omega = (2 * PI) / wanderPeriodS(f);
    const zeta = damping(f);
    const sd = this.sdlp0 + sdlpGain(f);
    const sigma = sd * sqrt(4 * zeta * omega ** 3);
    const disturbance = sigma * sqrt(DT_S) * min(1, v / 15) * rng.normal();
    const ms = ctx.microsleeps.at(t);
    let control: number;
    if (ms >= 0) {
      control = ctx.microsleeps.drifts[ms]!;
      this.recoverUntil = ctx.microsleeps.ends[ms]! + 1_500;
    } else if (t < this.recoverUntil) {
      const w = omega * 1.6;
      control = -w * w * this.x - 2 * 0.35 * w * this.vLat;
    } else control = -omega * omega * this.x - 2 * zeta * omega * this.vLat;
    this.vLat += control * DT_S + disturbance;
    this.x += this.vLat * DT_S;
    this.steer = ROAD_STEER * kappa + steerGain(v) * control + rng.normal(0, 0.1);

    if (abs(this.x) > ROAD_EDGE_M) {
      this.push(t, { type: 'Collision', object: 'guardrail', speed_kmh: f32(this.speed) });
      this.x = sign(this.x) * ROAD_EDGE_M;
      this.vLat *= -0.3;
      this.speed *= 0.6;
    }
    const offset = f32(this.x);
    if (this.armed && abs(offset) > LANE_DEPARTURE_M) {
      this.armed = false;
      this.push(t, { type: 'LaneDeparture', side: offset < 0 ? 'LEFT' : 'RIGHT', lane_offset_m: offset });
    } else if (!this.armed && abs(offset) < LANE_REARM_M) this.armed = true;
  }

  takeVehicle(): SimEvent {
    const { ctx } = this;
    const event: SimEvent = {
      topic: 'vehicle',
      event: {
        event_id: this.vehicleIds.uuid(),
        tenant_id: ctx.tenantId,
        session_id: ctx.sessionId,
        device_id: this.vehicleDevice,
        seq: this.vSeq,
        ts: this.vTs,
        speed_kmh: f32(this.speed),
        lane_offset_m: f32(this.x),
        steering_deg: f32(this.steer),
      },
    };
    this.vTs = this.tsOf(++this.vSeq);
    if (this.vTs !== Infinity) this.computeFrame();
    return event;
  }

  takeGame(): SimEvent {
    const { ctx } = this;
    const { ts, event } = this.queue.shift()!;
    if (event.type === 'StimulusShown') this.respond(ts, event.stimulus_id);
    else if (event.type === 'Collision' && event.object === 'vehicle') {
      event.speed_kmh = f32(this.speed);
      this.speed *= 0.5;
    }
    return {
      topic: 'game',
      event: {
        event_id: this.gameIds.uuid(),
        tenant_id: ctx.tenantId,
        session_id: ctx.sessionId,
        device_id: this.gameDevice,
        seq: this.gSeq++,
        ts,
        event,
      },
    };
  }

  /** Queues the next stimulus 20-40 s after `after`, if its response window ends within the session. */
  private scheduleStimulus(after: number): void {
    const { rng } = this;
    const shown = round(after + rng.uniform(STIMULUS_EVERY_MS[0], STIMULUS_EVERY_MS[1]));
    if (shown + STIMULUS_TIMEOUT_MS <= this.ctx.endTs) {
      this.push(shown, { type: 'StimulusShown', stimulus_id: rng.uuid() });
    }
  }

  /**
   * The driver's answer to a stimulus shown at `shown`: ~255-315 ms median when alert, slower and
   * with a heavier tail as fatigue grows, lapses (500-2500 ms) and misses more often; asleep, the
   * driver answers only after waking, if within the timeout.
   */
  private respond(shown: number, stimulusId: string): void {
    const { ctx, rng } = this;
    const f = ctx.fatigue(shown);
    const normal = (this.rt0 + rtShift(f)) * exp(rng.normal(0, 0.08)) + rng.exponential(rtTail(f));
    const ms = ctx.microsleeps.at(shown);
    let rt: number;
    if (ms >= 0) rt = ctx.microsleeps.ends[ms]! - shown + normal;
    else if (rng.chance(missP(f))) rt = Infinity;
    else if (rng.chance(lapseP(f))) rt = rng.uniform(500, 2_500);
    else rt = normal;
    rt = round(rt);
    if (rt < STIMULUS_TIMEOUT_MS) {
      this.push(shown + rt, { type: 'StimulusResponse', stimulus_id: stimulusId, reaction_ms: rt });
    } else {
      const at = shown + STIMULUS_TIMEOUT_MS;
      this.push(at, { type: 'StimulusMissed', stimulus_id: stimulusId, timeout_ms: STIMULUS_TIMEOUT_MS });
      if (rng.chance(REAR_END_P)) this.push(at, { type: 'Collision', object: 'vehicle', speed_kmh: 0 });
    }
    this.scheduleStimulus(shown);
  }

  /** Inserts keeping ts order; equal times keep insertion order. */
  private push(ts: number, event: GameEventKind): void {
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.ts > ts) i--;
    this.queue.splice(i, 0, { ts, event });
  }
}

class VehicleView implements Stream {
  constructor(private readonly d: Driving) {}
  get ts(): number {
    return this.d.vehicleTs;
  }
  take(): SimEvent {
    return this.d.takeVehicle();
  }
}

class GameView implements Stream {
  constructor(private readonly d: Driving) {}
  get ts(): number {
    return this.d.gameTs;
  }
  take(): SimEvent {
    return this.d.takeGame();
  }
}
