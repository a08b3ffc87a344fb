import { createHash } from 'node:crypto';
import type { SessionStarted, VehicleFrame } from '../../schemas/types';
import {
  CLOSED,
  EEG_HZ,
  FACE_HZ,
  LANE_DEPARTURE_M,
  LANE_REARM_M,
  STIMULUS_TIMEOUT_MS,
  VEHICLE_HZ,
  YAWN_OPEN,
  sessionEvents,
  type Profile,
  type SessionPlan,
  type SimEvent,
} from './session';

const plan: SessionPlan = {
  seed: 7,
  index: 0,
  tenantId: 't1',
  startTs: Date.UTC(2026, 0, 1, 8),
  durationMs: 30_000,
  profile: 'severe',
};
const digest = (p: SessionPlan) => {
  const hash = createHash('sha256');
  for (const e of sessionEvents(p)) hash.update(JSON.stringify(e) + '\n');
  return hash.digest('hex');
};
const ratio = (c: { theta_uv2: number; alpha_uv2: number; beta_uv2: number }) =>
  (c.theta_uv2 + c.alpha_uv2) / c.beta_uv2;
const of = <K extends SimEvent['topic']>(events: SimEvent[], topic: K) =>
  events.flatMap((e) => (e.topic === topic ? [e.event as Extract<SimEvent, { topic: K }>['event']] : []));

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const sd = (a: number[]) => {
  const m = mean(a);
  return Math.sqrt(mean(a.map((x) => (x - m) ** 2)));
};
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const correlation = (a: number[], b: number[]) => {
  const ma = mean(a);
  const mb = mean(b);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - ma) * (b[i]! - mb);
  return s / a.length / sd(a) / sd(b);
};

describe('simulated session', () => {
  const minute = { ...plan, durationMs: 60_000, profile: 'drowsy' as const };
  const events = [...sessionEvents(minute)];

  it('gives the same events for the same seed, and different ones for another seed or session', () => {
    expect(digest(plan)).toBe(digest({ ...plan }));
    expect(digest({ ...plan, seed: 8 })).not.toBe(digest(plan));
    expect(digest({ ...plan, index: 1 })).not.toBe(digest(plan));
  });

  it('starts with SessionStarted listing every device, ends with SessionEnded, and sends EEG at 10 Hz', () => {
    const started = events[0]!;
    expect(started).toMatchObject({
      topic: 'sessions',
      event: { ts: minute.startTs, event: { type: 'SessionStarted' } },
    });
    const devices = (started.event as { event: SessionStarted }).event.devices;
    expect(devices.map((d) => d.kind)).toEqual(['EEG', 'CAMERA', 'VEHICLE', 'SIMULATOR']);
    expect(new Set(devices.map((d) => d.device_id)).size).toBe(4);
    // Stable: device ids follow from the session alone.
    const again = [...sessionEvents({ ...minute, profile: 'alert' })][0]!.event as { event: SessionStarted };
    expect(again.event.devices).toEqual(devices);
    // Every telemetry event names one of those devices, matching its topic.
    const kindOf = Object.fromEntries(devices.map((d) => [d.device_id, d.kind]));
    const expected = { eeg: 'EEG', face: 'CAMERA', vehicle: 'VEHICLE', game: 'SIMULATOR' } as const;
    for (const e of events) if (e.topic !== 'sessions') expect(kindOf[e.event.device_id]).toBe(expected[e.topic]);

    expect(events.at(-1)!.event).toMatchObject({ event: { type: 'SessionEnded' }, ts: minute.startTs + 60_000 });
    const eeg = of(events, 'eeg');
    expect(eeg).toHaveLength(60 * EEG_HZ);
    eeg.forEach((f, i) => expect(f.ts).toBe(minute.startTs + (i + 1) * 100));
  });

  it('sends face frames at 15/s and vehicle frames at 10/s, evenly spaced, with stimuli every 20-40 s', () => {
    const face = of(events, 'face');
    const vehicle = of(events, 'vehicle');
    expect(FACE_HZ).toBe(15);
    expect(VEHICLE_HZ).toBe(10);
    expect(face).toHaveLength(900);
    expect(vehicle).toHaveLength(600);
    const gaps = (ts: number[]) => ts.slice(1).map((t, i) => t - ts[i]!);
    expect(new Set(gaps(face.map((f) => f.ts)))).toEqual(new Set([66, 67]));
    expect(new Set(gaps(vehicle.map((f) => f.ts)))).toEqual(new Set([100]));
    const shown = of(events, 'game').filter((g) => g.event.type === 'StimulusShown');
    expect(shown.length).toBeGreaterThanOrEqual(1);
    expect(shown.length).toBeLessThanOrEqual(3);
    for (const g of gaps([minute.startTs, ...shown.map((s) => s.ts)])) {
      expect(g).toBeGreaterThanOrEqual(20_000);
      expect(g).toBeLessThanOrEqual(40_000);
    }
  });

  it('yields events in event-time order (ties: eeg, face, vehicle, game), with unique ids and per-device seq from 0', () => {
    const order = { sessions: -1, eeg: 0, face: 1, vehicle: 2, game: 3 };
    for (let i = 2; i < events.length - 1; i++) {
      const [a, b] = [events[i - 1]!, events[i]!];
      expect(b.event.ts).toBeGreaterThanOrEqual(a.event.ts);
      if (a.event.ts === b.event.ts) expect(order[b.topic]).toBeGreaterThanOrEqual(order[a.topic]);
    }
    expect(new Set(events.map((e) => e.event.event_id)).size).toBe(events.length);
    const seqs = new Map<string, number[]>();
    for (const e of events)
      if (e.topic !== 'sessions') seqs.set(e.event.device_id, [...(seqs.get(e.event.device_id) ?? []), e.event.seq]);
    expect(seqs.size).toBe(4);
    for (const s of seqs.values()) expect(s).toEqual(s.map((_, i) => i));
  });

  it('emits only the chosen modalities, and leaving one out does not change the others', () => {
    const eegOnly = [...sessionEvents({ ...minute, modalities: ['eeg'] })];
    expect(new Set(eegOnly.map((e) => e.topic))).toEqual(new Set(['sessions', 'eeg']));
    expect(of(eegOnly, 'eeg')).toEqual(of(events, 'eeg'));
    const game = [...sessionEvents({ ...minute, modalities: ['game', 'face'] })];
    expect(of(game, 'game')).toEqual(of(events, 'game'));
    expect(of(game, 'face')).toEqual(of(events, 'face'));
    expect((game[0]!.event as { event: SessionStarted }).event.devices.map((d) => d.kind)).toEqual([
      'CAMERA',
      'SIMULATOR',
    ]);
  });

  it('reports no face as face_detected false with null measures, now and then', () => {
    const lost = of(events, 'face').filter((f) => !f.face_detected);
    for (const f of lost) {
      expect([f.eye_closure, f.mouth_open, f.head_pitch_deg, f.head_yaw_deg, f.head_roll_deg]).toEqual([
        null,
        null,
        null,
        null,
        null,
      ]);
    }
  });

  it('raises the EEG (theta+alpha)/beta ratio over a severe session but not an alert one', () => {
    const meanRatio = (p: SessionPlan, from: number, to: number) => {
      const frames = of([...sessionEvents({ ...p, modalities: ['eeg'] })], 'eeg').slice(from, to);
      return mean(frames.flatMap((f) => f.channels.map(ratio)));
    };
    const severe = { ...plan, durationMs: 120_000 };
    expect(meanRatio(severe, -200, undefined as never) / meanRatio(severe, 0, 200)).toBeGreaterThan(1.5);
    const alert = { ...severe, profile: 'alert' as const };
    const drift = meanRatio(alert, -200, undefined as never) / meanRatio(alert, 0, 200);
    expect(drift).toBeGreaterThan(0.9);
    expect(drift).toBeLessThan(1.1);
  });
});

/**
 * What the fatigue model measures, over the steady end of long sessions (the last quarter, where
 * every profile is on its plateau), pooled over a few sessions per profile.
 */
interface Measures {
  minutes: number;
  blinksPerMin: number;
  /** Closures (runs of eye_closure >= 0.8) shorter than 1 s, in ms (frames * 1000/15). */
  blinkMs: number[];
  perclos: number;
  longBlinkShare: number;
  microsleepsPer10Min: number;
  yawnsPer10Min: number;
  nodsPerMin: number;
  faceLostShare: number;
  sdlp: number;
  steeringVsOffset: number;
  speedMedian: number;
  reactionMedian: number;
  lapseShare: number;
  missed: number;
  departures: number;
  collisions: number;
}

const SESSION_MS = 30 * 60_000;
const SESSIONS = 3;

function measure(profile: Profile): Measures {
  let closedFrames = 0;
  let seenFrames = 0;
  let frames = 0;
  let yawns = 0;
  let nods = 0;
  let missed = 0;
  let departures = 0;
  let collisions = 0;
  const closures: number[] = [];
  const offsets: number[] = [];
  const steering: number[] = [];
  const speeds: number[] = [];
  const reactions: number[] = [];
  for (let index = 0; index < SESSIONS; index++) {
    const p: SessionPlan = { seed: 2, index, tenantId: 't1', startTs: plan.startTs, durationMs: SESSION_MS, profile };
    const from = p.startTs + 0.75 * SESSION_MS;
    let closed = 0;
    let open = 0;
    let pitched = 0;
    let armed = true;
    let edges = 0;
    let reported = 0;
    let lastVehicle: VehicleFrame | undefined;
    for (const e of sessionEvents(p)) {
      // Lane departures over the whole session: each one is the vehicle frame it reports, and every
      // excursion beyond the threshold (re-armed once back within LANE_REARM_M) is reported once.
      if (e.topic === 'vehicle') {
        lastVehicle = e.event;
        const off = Math.abs(e.event.lane_offset_m!);
        if (armed && off > LANE_DEPARTURE_M) [armed, edges] = [false, edges + 1];
        else if (!armed && off < LANE_REARM_M) armed = true;
      }
      if (e.topic === 'game' && e.event.event.type === 'LaneDeparture') {
        const ev = e.event.event;
        reported++;
        expect([e.event.ts, ev.lane_offset_m]).toEqual([lastVehicle!.ts, lastVehicle!.lane_offset_m]);
        expect(Math.abs(ev.lane_offset_m)).toBeGreaterThan(LANE_DEPARTURE_M);
        expect(ev.side).toBe(ev.lane_offset_m < 0 ? 'LEFT' : 'RIGHT');
      }
      if (e.event.ts < from) continue;
      if (e.topic === 'face') {
        const f = e.event;
        frames++;
        if (!f.face_detected || f.eye_closure! < CLOSED) {
          if (closed) closures.push(closed);
          closed = 0;
        }
        if (!f.face_detected) continue;
        seenFrames++;
        if (f.eye_closure! >= CLOSED) {
          closedFrames++;
          closed++;
        }
        if (f.mouth_open! >= YAWN_OPEN) open++;
        else {
          if ((open * 1000) / FACE_HZ >= 1500) yawns++;
          open = 0;
        }
        if (f.head_pitch_deg! >= 12) pitched++;
        else {
          if (pitched >= 3) nods++;
          pitched = 0;
        }
      } else if (e.topic === 'vehicle') {
        speeds.push(e.event.speed_kmh);
        if (e.event.speed_kmh > 40) {
          offsets.push(e.event.lane_offset_m!);
          steering.push(e.event.steering_deg);
        }
      } else if (e.topic === 'game') {
        const ev = e.event.event;
        if (ev.type === 'StimulusResponse') reactions.push(ev.reaction_ms);
        else if (ev.type === 'StimulusMissed') missed++;
        else if (ev.type === 'Collision') collisions++;
      }
    }
    expect(reported).toBe(edges);
    departures += reported;
  }
  const minutes = (SESSIONS * 0.25 * SESSION_MS) / 60_000;
  const closureMs = closures.map((n) => (n * 1000) / FACE_HZ);
  const blinkMs = closureMs.filter((d) => d < 1000);
  return {
    minutes,
    blinksPerMin: blinkMs.length / minutes,
    blinkMs,
    perclos: closedFrames / seenFrames,
    longBlinkShare: closureMs.filter((d) => d >= 150 && d < 1000).length / closureMs.length,
    microsleepsPer10Min: (closureMs.filter((d) => d >= 1000).length / minutes) * 10,
    yawnsPer10Min: (yawns / minutes) * 10,
    nodsPerMin: nods / minutes,
    faceLostShare: 1 - seenFrames / frames,
    sdlp: sd(offsets),
    steeringVsOffset: correlation(steering, offsets),
    speedMedian: median(speeds),
    reactionMedian: median(reactions),
    lapseShare: (reactions.filter((r) => r >= 500).length + missed) / (reactions.length + missed),
    missed,
    departures,
    collisions,
  };
}

describe('simulated signals by fatigue profile (last quarter of 3 x 30-min sessions each)', () => {
  let alert: Measures;
  let drowsy: Measures;
  let severe: Measures;
  beforeAll(() => {
    [alert, drowsy, severe] = (['alert', 'drowsy', 'severe'] as const).map(measure) as [Measures, Measures, Measures];
    // The measured numbers, for the record (jest prints them with --verbose runs' console output).
    const show = (m: Measures) => ({ ...m, blinkMs: undefined, blinkMeanMs: Math.round(mean(m.blinkMs)) });
    if (process.env.SIM_REPORT)
      console.log(JSON.stringify({ alert: show(alert), drowsy: show(drowsy), severe: show(severe) }, null, 1));
  });
  const rising = (pick: (m: Measures) => number) => {
    expect(pick(drowsy)).toBeGreaterThan(pick(alert));
    expect(pick(severe)).toBeGreaterThan(pick(drowsy));
  };

  it('blinks 15-20 times a minute for 100-300 ms when alert', () => {
    expect(alert.blinksPerMin).toBeGreaterThanOrEqual(15);
    expect(alert.blinksPerMin).toBeLessThanOrEqual(20);
    // At 15 frames/s a closure measures as whole frames (66.7 ms each): a 100-300 ms blink spans 1-5.
    expect(mean(alert.blinkMs)).toBeGreaterThanOrEqual(100);
    expect(mean(alert.blinkMs)).toBeLessThanOrEqual(300);
    expect(alert.blinkMs.filter((d) => d <= 334).length / alert.blinkMs.length).toBeGreaterThan(0.95);
    expect(median(severe.blinkMs)).toBeGreaterThan(median(alert.blinkMs));
  });

  it('raises PERCLOS, the long-blink share and microsleeps with fatigue', () => {
    expect(alert.perclos).toBeLessThan(0.06);
    expect(drowsy.perclos).toBeGreaterThan(0.06);
    expect(severe.perclos).toBeGreaterThan(0.12);
    rising((m) => m.perclos);
    expect(alert.longBlinkShare).toBeLessThan(0.2);
    expect(drowsy.longBlinkShare).toBeGreaterThan(0.2);
    expect(severe.longBlinkShare).toBeGreaterThan(0.5);
    rising((m) => m.longBlinkShare);
    expect(alert.microsleepsPer10Min).toBe(0);
    expect(drowsy.microsleepsPer10Min).toBeLessThan(2);
    expect(severe.microsleepsPer10Min).toBeGreaterThanOrEqual(3);
    expect(severe.microsleepsPer10Min).toBeGreaterThan(drowsy.microsleepsPer10Min);
  });

  it('yawns and nods more with fatigue', () => {
    expect(alert.yawnsPer10Min).toBeLessThan(1.5);
    rising((m) => m.yawnsPer10Min);
    expect(severe.yawnsPer10Min).toBeGreaterThanOrEqual(3);
    expect(alert.nodsPerMin).toBe(0);
    rising((m) => m.nodsPerMin);
    expect(severe.nodsPerMin).toBeGreaterThan(1);
  });

  it('loses the face now and then, rarely for long', () => {
    for (const m of [alert, drowsy, severe]) {
      expect(m.faceLostShare).toBeGreaterThan(0.001);
      expect(m.faceLostShare).toBeLessThan(0.02);
    }
  });

  it('weaves more in the lane with fatigue: SDLP ~0.15-0.2 m alert, ~0.35-0.45 m severe', () => {
    expect(alert.sdlp).toBeGreaterThanOrEqual(0.14);
    expect(alert.sdlp).toBeLessThanOrEqual(0.2);
    expect(severe.sdlp).toBeGreaterThanOrEqual(0.35);
    expect(severe.sdlp).toBeLessThanOrEqual(0.45);
    rising((m) => m.sdlp);
    // Steering is the driver's correction: it pushes against the offset.
    for (const m of [alert, drowsy, severe]) expect(m.steeringVsOffset).toBeLessThan(-0.4);
    for (const m of [alert, drowsy, severe]) {
      expect(m.speedMedian).toBeGreaterThanOrEqual(80);
      expect(m.speedMedian).toBeLessThanOrEqual(110);
    }
  });

  it('departs the lane (consistently with the vehicle frames) and collides only when fatigued, and rarely', () => {
    expect(alert.departures).toBe(0);
    expect(severe.departures).toBeGreaterThan(drowsy.departures);
    expect(alert.collisions).toBe(0);
    expect(severe.collisions / severe.minutes).toBeLessThan(0.3);
  });

  it('reacts in ~250-350 ms when alert, slower with lapses and misses as fatigue grows', () => {
    expect(alert.reactionMedian).toBeGreaterThanOrEqual(250);
    expect(alert.reactionMedian).toBeLessThanOrEqual(350);
    rising((m) => m.reactionMedian);
    expect(alert.lapseShare).toBeLessThan(0.05);
    expect(severe.lapseShare).toBeGreaterThan(0.2);
    rising((m) => m.lapseShare);
    expect(alert.missed).toBe(0);
    expect(severe.missed).toBeGreaterThan(0);
  });
});

describe('stimuli', () => {
  it('answers every stimulus exactly once, with a response within the timeout or a StimulusMissed', () => {
    const game = of([...sessionEvents({ ...plan, durationMs: SESSION_MS, modalities: ['game'] })], 'game');
    const shown = new Map<string, number>();
    const answered = new Set<string>();
    for (const g of game) {
      const ev = g.event;
      if (ev.type === 'StimulusShown') shown.set(ev.stimulus_id, g.ts);
      if (ev.type === 'StimulusResponse' || ev.type === 'StimulusMissed') {
        expect(answered.has(ev.stimulus_id)).toBe(false);
        answered.add(ev.stimulus_id);
        const delay = g.ts - shown.get(ev.stimulus_id)!;
        if (ev.type === 'StimulusResponse') {
          expect(delay).toBe(ev.reaction_ms);
          expect(delay).toBeLessThan(STIMULUS_TIMEOUT_MS);
        } else expect([delay, ev.timeout_ms]).toEqual([STIMULUS_TIMEOUT_MS, STIMULUS_TIMEOUT_MS]);
      }
    }
    expect(shown.size).toBeGreaterThan(40);
    expect([...shown.keys()].every((id) => answered.has(id))).toBe(true);
  });
});
