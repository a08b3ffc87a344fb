import { fatigueV1 } from './config';
import { decide, evolve, step } from './processor';
import {
  cloneState,
  compactPending,
  deserializeState,
  initialState,
  isEnded,
  serializeState,
  type FatigueInput,
  type TelemetryInput,
} from './state';
import { decodeStateBinary, encodeStateBinary } from './state-codec';
import {
  SESSION,
  T0,
  ack,
  alertLog,
  drive,
  driveEvents,
  eeg,
  every,
  face,
  faceAt10Hz,
  faceEpisodes,
  merge,
  missed,
  pushWatermark,
  run,
  scoreAt,
  sessionEnded,
  sessionStarted,
  tick,
  tsOf,
  vehicle,
} from './testing';
import { isVigilError } from '../../core/errors';

const s = (sec: number) => T0 + sec * 1000;

describe('windows in event time', () => {
  it('given a session starting off the hop grid, then windows of 60 s end on multiples of 5 s, one per hop', () => {
    const r = run(faceAt10Hz(s(1.234), s(30)));
    expect(r.scores.map((x) => x.window_end_ts)).toEqual([5, 10, 15, 20, 25].map(s));
    expect(r.scores[0]).toMatchObject({
      ts: s(5),
      window_start_ts: s(-55),
      window_end_ts: s(5),
      model_version: 'fatigue-v1',
    });
  });

  it('given telemetry, then a window is emitted only once the watermark (max ts − 2 s) reaches its end', () => {
    const { state } = run(faceAt10Hz(s(0), s(6)));
    expect(step(state, face(s(6.999))).outputs).toEqual([]);
    const outputs = step(state, face(s(7))).outputs;
    expect(outputs.map((o) => o.kind === 'score' && o.event.window_end_ts)).toEqual([s(5)]);
  });

  it('given a long gap in the telemetry, then the empty windows of the gap are skipped without scores', () => {
    const r = run(merge(faceAt10Hz(s(0), s(20)), faceAt10Hz(s(3600), s(3630))));
    const ends = r.scores.map((x) => (x.window_end_ts - T0) / 1000);
    expect(ends).toEqual([5, 10, 15, 20, 25, 3605, 3610, 3615, 3620, 3625]);
  });
});

describe('lateness', () => {
  it('given an event at or behind the watermark, then it is handed back as late and changes nothing', () => {
    const { state } = run(faceAt10Hz(s(0), s(10.1))); // max ts 10 s, watermark 8 s
    const before = serializeState(state);
    const lateFrame = face(s(8), { closure: 1 });
    expect(step(state, lateFrame).outputs).toEqual([{ kind: 'late', input: lateFrame }]);
    expect(serializeState(state)).toBe(before);
    expect(step(state, face(s(8.001))).outputs).toEqual([]);
  });

  it('given events out of order within the allowed 2 s, then the outputs equal those of the ordered stream', () => {
    const ordered = merge(
      faceEpisodes(s(0), s(120), {
        closures: [
          [s(10), 1_200],
          [s(30), 300],
          [s(50), 200],
        ],
        mouth: [[s(40), 2_000]],
      }),
      every(s(0), s(120), 100, (ts, i) => vehicle(ts + 37, { speed: 70, offset: (i % 7) / 20 })),
      every(s(0), s(120), 100, (ts) => eeg(ts + 71)),
    );
    // reverse every block of 1.5 s of inputs: each arrives at most 1.5 s after a later one
    const blocks = new Map<number, FatigueInput[]>();
    for (const x of ordered) {
      const k = Math.floor((tsOf(x) - T0) / 1_500);
      blocks.set(k, [...(blocks.get(k) ?? []), x]);
    }
    const shuffled = [...blocks.values()].flatMap((b) => b.reverse());
    const a = run(ordered);
    const b = run(shuffled);
    expect(b.late).toEqual([]);
    expect(b.outputs).toEqual(a.outputs);
    expect(a.alerts.length).toBeGreaterThan(0);
  });

  it('given telemetry after the session ended, then it is late', () => {
    const { state } = run([...faceAt10Hz(s(0), s(10)), sessionEnded(s(10))]);
    const after = vehicle(s(20));
    expect(step(state, after).outputs).toEqual([{ kind: 'late', input: after }]);
  });
});

describe("a producer's resend (the same event twice)", () => {
  // Face frames at 10 Hz and a missed stimulus every 3 s: lapses weigh in every window's score.
  const drive = merge(
    faceAt10Hz(s(0), s(90)),
    every(s(0.05), s(90), 3_000, (ts) => missed(ts)),
  );
  /** Each missed stimulus followed at once by `copyOf(it)`. */
  const withCopies = (copyOf: (x: FatigueInput) => FatigueInput) =>
    drive.flatMap((x) => (x.kind === 'game' ? [x, copyOf(x)] : [x]));
  const sameEvent = (x: FatigueInput) => structuredClone(x);
  const otherEvent = (x: FatigueInput) =>
    ({ ...x, event: { ...(x as TelemetryInput).event, event_id: `other-${tsOf(x)}` } }) as FatigueInput;

  it('given a copy while the first is in the reorder buffer, then it is dropped as a duplicate and the outputs equal one delivery', () => {
    const once = run(drive);
    const twice = run(withCopies(sameEvent));
    expect(twice.duplicates).toHaveLength(30);
    expect(twice.scores).toEqual(once.scores);
    expect(twice.alerts).toEqual(once.alerts);
  });

  it('given another event with the same ts and source but its own event_id, then both count', () => {
    const once = run(drive);
    const two = run(withCopies(otherEvent));
    expect(two.duplicates).toEqual([]);
    expect(two.scores.map((x) => x.score)).not.toEqual(once.scores.map((x) => x.score));
  });

  it('given a copy after the watermark passed its ts, then it is late, not counted again', () => {
    const first = missed(s(10.05));
    const { state } = run([...faceAt10Hz(s(0), s(10)), first, ...faceAt10Hz(s(10), s(13))]);
    const copy = structuredClone(first);
    expect(step(state, copy).outputs).toEqual([{ kind: 'late', input: copy }]);
  });

  it('given a snapshot taken with the first copy buffered (JSON or binary), then the restored state still drops the copy', () => {
    const first = missed(s(10.05));
    const { state } = run([...faceAt10Hz(s(0), s(10)), first]);
    for (const restored of [deserializeState(serializeState(state)), decodeStateBinary(encodeStateBinary(state))]) {
      const copy = structuredClone(first);
      expect(step(restored, copy).outputs).toEqual([{ kind: 'duplicate', input: copy }]);
    }
  });
});

describe('session end and idle eviction', () => {
  it('given SessionEnded, then pending windows are flushed up to the end and active alerts clear with session_ended', () => {
    const r = run([...faceEpisodes(s(0), s(32.3), { closures: [[s(20), 1_500]] }), sessionEnded(s(33))]);
    expect(r.scores.map((x) => (x.window_end_ts - T0) / 1000)).toEqual([5, 10, 15, 20, 25, 30, 35]);
    expect(alertLog(r.alerts)).toEqual(['+21 AlertRaised microsleep L2', '+35 AlertCleared session_ended']);
    expect(isEnded(r.state)).toBe(true);
    expect(r.state.pending).toEqual([]);
    expect(r.state.buckets).toEqual([]);
  });

  it('given SessionEnded twice, then the second one does nothing', () => {
    const { state } = run([...faceAt10Hz(s(0), s(10)), sessionEnded(s(10))]);
    expect(step(state, sessionEnded(s(11))).outputs).toEqual([]);
  });

  it('given SessionEnded with escalations due before the end, then they are emitted before the clearing', () => {
    const r = run([...faceEpisodes(s(0), s(50), { closures: [[s(10), 1_000]] }), sessionEnded(s(50))]);
    expect(alertLog(r.alerts)).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+50 AlertCleared session_ended',
    ]);
  });

  it('given a tick less than the idle time after the last telemetry, then nothing; at the idle time, the session is flushed and ended', () => {
    const { state } = run(faceAt10Hz(s(0), s(20.1))); // last telemetry at 20 s
    expect(step(state, tick(s(20) + fatigueV1.idleEvictMs - 1)).outputs).toEqual([]);
    expect(isEnded(state)).toBe(false);
    const outputs = step(state, tick(s(20) + fatigueV1.idleEvictMs)).outputs;
    expect(outputs.map((o) => o.kind === 'score' && (o.event.window_end_ts - T0) / 1000)).toEqual([20, 25]);
    expect(isEnded(state)).toBe(true);
  });

  it('given only an acknowledgement for a session never seen, then the state is droppable and still fresh', () => {
    const { state, outputs } = run([ack(s(10), 'some-alert'), tick(s(900))]);
    expect(outputs).toEqual([]);
    expect(isEnded(state)).toBe(true);
    expect(state).toEqual(initialState(SESSION));
  });

  it('given an idle time from the config, then eviction follows it', () => {
    const config = { ...fatigueV1, idleEvictMs: 60_000 };
    const { state } = run(faceAt10Hz(s(0), s(20.1)), { config });
    step(state, tick(s(80)), config);
    expect(isEnded(state)).toBe(true);
  });
});

describe('baseline: the first 5 minutes of the session', () => {
  /** EEG ratio alternating 1.4 / 1.6 (mean 1.5, std 0.1) in the first 5 min, then `after`. */
  const eegSession = (after: number) =>
    merge(
      [sessionStarted(s(0))],
      every(s(0), s(420), 100, (ts, i) => eeg(ts, { ratio: ts < s(300) ? (i % 2 ? 1.6 : 1.4) : after })),
      faceAt10Hz(s(0), s(420)),
    );

  it('given less than 5 minutes, then the EEG is left out and baseline_ready is false', () => {
    const r = run(eegSession(1.65));
    const before = r.scores.filter((x) => x.window_end_ts < s(300));
    expect(before).toHaveLength(59);
    expect(
      before.every((x) => x.baseline_ready === false && x.components.eeg === null && x.features.eeg_ratio_z === null),
    ).toBe(true);
  });

  it('given 5 minutes, then the EEG is scored against the baseline mean and std of the ratio', () => {
    const r = run(eegSession(1.65));
    const at300 = scoreAt(r, s(300))!;
    expect(at300.baseline_ready).toBe(true);
    expect(at300.features.eeg_ratio_z).toBeCloseTo(0, 6);
    expect(at300.components.eeg).toBe(0);
    // a window entirely after the baseline: z = (1.65 − 1.5) / 0.1 = 1.5, sub-score 0.5
    const at360 = scoreAt(r, s(360))!;
    expect(at360.features.eeg_ratio).toBeCloseTo(1.65, 10);
    expect(at360.features.eeg_ratio_z).toBeCloseTo(1.5, 6);
    expect(at360.components.eeg).toBeCloseTo(0.5, 6);
    // ocular 0, yawn 0, eeg 0.5: 100 * 0.20 * 0.5 / (0.40 + 0.20 + 0.05)
    expect(at360.score).toBe(15.4);
  });

  it('given too little EEG in the first 5 minutes, then the EEG stays out for the whole session', () => {
    const inputs = merge(
      [sessionStarted(s(0))],
      every(s(295), s(420), 100, (ts) => eeg(ts, { ratio: 2 })), // 50 frames in the baseline period
      faceAt10Hz(s(0), s(420)),
    );
    const r = run(inputs);
    expect(scoreAt(r, s(400))!.baseline_ready).toBe(true);
    expect(r.scores.every((x) => x.components.eeg === null)).toBe(true);
  });

  it('given a personal PERCLOS of 0.02, then the ocular term uses Pb = 0.02 instead of 0.06', () => {
    // one isolated 100 ms closure per 50 frames (0.02) for 5 min, then 0.07
    const closed = (ts: number, i: number) => (ts < s(300) ? i % 50 === 0 : i % 100 < 14 && i % 2 === 0);
    const r = run(every(s(0), s(380), 100, (ts, i) => face(ts, { closure: closed(ts, i) ? 0.95 : 0.1 })));
    const w = scoreAt(r, s(370))!;
    expect(w.features.perclos).toBeCloseTo(0.07, 10);
    expect(w.components.ocular).toBeCloseTo(0.35, 10); // 0.7 * (0.07 − 0.02) / (0.12 − 0.02); with 0.06: 0.117
  });

  it('given a personal SDLP of 0.10 m, then the driving term uses b = 0.10 m', () => {
    const inputs = every(s(0), s(380), 100, (ts, i) =>
      vehicle(ts, { speed: 80, offset: (i % 2 ? 1 : -1) * (ts < s(300) ? 0.1 : 0.15) }),
    );
    const w = scoreAt(run(inputs), s(370))!;
    expect(w.features.sdlp_m).toBeCloseTo(0.15, 10);
    expect(w.components.driving).toBeCloseTo(0.5, 10);
  });

  it('given SessionStarted before the first telemetry, then the baseline runs from the session start', () => {
    const r = run(merge([sessionStarted(s(0))], faceAt10Hz(s(60), s(320))));
    expect(scoreAt(r, s(295))!.baseline_ready).toBe(false);
    expect(scoreAt(r, s(300))!.baseline_ready).toBe(true);
  });
});

describe('determinism and state', () => {
  const drowsyDrive = drive({ from: T0, durationMs: 30 * 60_000, fatigue: (t) => Math.min(1, t / (20 * 60_000)) });

  it('given the same inputs twice, then deep-equal outputs and equal JSON', () => {
    const a = run(drowsyDrive);
    const b = run(drowsyDrive);
    expect(b.outputs).toEqual(a.outputs);
    expect(JSON.stringify(b.outputs)).toBe(JSON.stringify(a.outputs));
    expect(serializeState(b.state)).toBe(serializeState(a.state));
    // the drive is eventful: scores, level changes, escalations and a microsleep
    expect(a.scores.length).toBe(359);
    expect(new Set(a.alerts.map((x) => x.event.type))).toEqual(
      new Set(['AlertRaised', 'AlertEscalated', 'AlertCleared']),
    );
  });

  it('given the outputs, then every event_id is a unique version-8 UUID', () => {
    const { outputs } = run(drowsyDrive);
    const ids = outputs.map((o) => ('event' in o ? o.event.event_id : ''));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('given a state snapshot restored mid-stream, then the outputs equal those of an uninterrupted run', () => {
    const whole = run(drowsyDrive);
    for (const cut of [1, 4_321, 12_345, 40_000]) {
      const first = run(drowsyDrive.slice(0, cut));
      const restored = deserializeState(serializeState(first.state));
      const second = run(drowsyDrive.slice(cut), { state: restored });
      expect([...first.outputs, ...second.outputs]).toEqual(whole.outputs);
    }
  });

  it('given snapshots after every 997 inputs, then the outputs still equal an uninterrupted run', () => {
    const whole = run(drowsyDrive);
    let state = initialState(SESSION);
    const outputs = [];
    for (let i = 0; i < drowsyDrive.length; i++) {
      outputs.push(...step(state, drowsyDrive[i]!).outputs);
      if (i % 997 === 0) state = deserializeState(serializeState(state));
    }
    expect(outputs).toEqual(whole.outputs);
  });

  it('given a 2-hour session, then the state does not grow', () => {
    const inputs = driveEvents({
      from: T0,
      durationMs: 2 * 3_600_000,
      fatigue: (t) => 0.2 + 0.6 * Math.abs(Math.sin(t / 1_800_000)),
    });
    let state = initialState(SESSION);
    const sizes: number[] = [];
    let i = 0;
    for (const input of inputs) {
      step(state, input);
      if (i % 5_000 === 0) sizes.push(serializeState(state).length);
      if (i % 50_000 === 0) state = deserializeState(serializeState(state));
      i++;
    }
    expect(i).toBeGreaterThan(200_000);
    const early = Math.max(...sizes.slice(5, 20)); // 10-30 min
    const late = Math.max(...sizes.slice(-20)); // the last ~30 min
    expect(late).toBeLessThan(early * 1.5);
    expect(Math.max(...sizes)).toBeLessThan(16_000);
    expect(state.buckets.length).toBeLessThanOrEqual(fatigueV1.windowMs / fatigueV1.hopMs + 2);
    expect(state.pending.length - state.pendingHead).toBeLessThan(100);
  });

  it('given decide and evolve, then they leave the given state untouched and agree with step', () => {
    const { state } = run(drowsyDrive.slice(0, 20_000));
    const before = serializeState(state);
    const input = drowsyDrive[20_000]!;
    const outputs = decide(input, state);
    const next = evolve(state, input);
    expect(serializeState(state)).toBe(before);
    const stepped = step(cloneState(state), input);
    expect(outputs).toEqual(stepped.outputs);
    expect(serializeState(next)).toBe(serializeState(stepped.state));
  });

  it('given a snapshot of another state version or model, then deserializing fails with EVENT_INVALID', () => {
    const json = serializeState(initialState(SESSION));
    const tryParse = (x: string) => {
      try {
        deserializeState(x);
        return null;
      } catch (e) {
        return isVigilError(e) ? e.code : 'other';
      }
    };
    expect(tryParse(json)).toBeNull();
    expect(tryParse(json.replace('"v":1', '"v":2'))).toBe('EVENT_INVALID');
    expect(tryParse(json.replace('fatigue-v1', 'fatigue-v0'))).toBe('EVENT_INVALID');
    expect(tryParse('{')).toBe('EVENT_INVALID');
  });

  it('given an event of another session, then step refuses it', () => {
    const other = face(s(1));
    if (other.kind !== 'face') throw new Error('face');
    expect(() => step(initialState(SESSION), { kind: 'face', event: { ...other.event, session_id: 'other' } })).toThrow(
      /session other/,
    );
  });

  it('given a state mid-stream, then its snapshot restores to an equal state and re-serialises identically', () => {
    const { state } = run(drowsyDrive.slice(0, 12_345));
    compactPending(state);
    expect(state.pending.length).toBeGreaterThan(10);
    expect(state.buckets.length).toBeGreaterThan(10);
    const json = serializeState(state);
    const back = deserializeState(json);
    expect(back).toEqual(state);
    expect(serializeState(back)).toBe(json);
    expect(json.length).toBeLessThan(5_000);
  });

  it('given a fresh state, then its snapshot is plain JSON starting with the version', () => {
    const json = serializeState(initialState(SESSION));
    expect(json.startsWith('{"v":1,')).toBe(true);
    expect(JSON.parse(json)).toEqual(initialState(SESSION));
    expect(pushWatermark(s(0)).kind).toBe('game');
  });
});
