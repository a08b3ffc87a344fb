import { fatigueV1 } from './config';
import { alertIdOf } from './ids';
import { step } from './processor';
import type { FatigueInput } from './state';
import {
  SESSION,
  T0,
  ack,
  alertLog,
  every,
  face,
  faceEpisodes,
  merge,
  missed,
  pushWatermark,
  run,
  shown,
  vehicle,
} from './testing';

const s = (sec: number) => T0 + sec * 1000;
const idOf = (reason: string, sec: number) => alertIdOf(fatigueV1.model_version, SESSION, reason, s(sec));

/**
 * A PVT stream alone (so score = 100 * clamp(lapses / 3)): a stimulus shown every 5 s (at +0.5 s)
 * over [0, until) s, and missed stimuli at the given seconds.
 */
const pvt = (untilSec: number, missedAtSec: number[]) =>
  merge(
    every(s(0.5), s(untilSec), 5_000, (ts) => shown(ts)),
    missedAtSec.map((t) => missed(s(t))),
  );

describe('level alerts', () => {
  it('given two lapses per minute (score 66.7), then drowsy is raised after 30 s >= 50 and cleared after 60 s < 35', () => {
    // misses at 1, 31, 61, 91 s: windows ending 35..120 s hold two (66.7), 125..150 s one (33.3), then none
    const r = run([...pvt(200, [1, 31, 61, 91]), pushWatermark(s(190))]);
    expect(alertLog(r.alerts)).toEqual(['+65 AlertRaised drowsy L1', '+185 AlertCleared recovered']);
    const raised = r.alerts[0]!.event;
    expect(raised).toEqual({
      type: 'AlertRaised',
      alert_id: idOf('drowsy', 65),
      level: 1,
      reason: 'drowsy',
      score: 66.7,
    });
    expect(r.scores.find((x) => x.ts === s(60))!.level).toBe(0);
    expect(r.scores.find((x) => x.ts === s(65))!.level).toBe(1);
    expect(r.scores.find((x) => x.ts === s(180))!.level).toBe(1);
    expect(r.scores.find((x) => x.ts === s(185))!.level).toBe(0);
  });

  /** Every stimulus missed from 1 s to 116 s: score 100 from the window ending at 15 s to 165 s. */
  const severe = pvt(
    320,
    Array.from({ length: 24 }, (_, k) => 1 + 5 * k),
  );

  it('given a score >= 70 for 15 s, then drowsy and severe are raised; severe escalates every 30 s until it clears', () => {
    const r = run([...severe, pushWatermark(s(310))]);
    expect(alertLog(r.alerts)).toEqual([
      '+30 AlertRaised drowsy L1',
      '+30 AlertRaised severe L2',
      '+60 AlertEscalated 1',
      '+90 AlertEscalated 2',
      '+120 AlertEscalated 3',
      '+150 AlertEscalated 4',
      '+180 AlertEscalated 5',
      '+210 AlertEscalated 6',
      '+240 AlertEscalated 7',
      '+270 AlertEscalated 8',
      // < 55 from the window ending at 175 s: 120 s later level 2 leaves, straight to 0 (< 35 for 60 s too)
      '+295 AlertCleared recovered',
      '+295 AlertCleared recovered',
    ]);
    expect(r.alerts[2]!.event).toEqual({ type: 'AlertEscalated', alert_id: idOf('severe', 30), level: 2, count: 1 });
    expect(r.alerts.slice(-2).map((a) => a.event.alert_id)).toEqual([idOf('severe', 30), idOf('drowsy', 30)]);
  });

  it('given the severe alert acknowledged, then AlertAcknowledged follows and escalation stops', () => {
    const inputs = merge(severe, [ack(s(75), idOf('severe', 30), { by: 'dispatcher-7' }), pushWatermark(s(310))]);
    const r = run(inputs);
    expect(alertLog(r.alerts)).toEqual([
      '+30 AlertRaised drowsy L1',
      '+30 AlertRaised severe L2',
      '+60 AlertEscalated 1',
      '+75 AlertAcknowledged',
      '+295 AlertCleared recovered',
      '+295 AlertCleared recovered',
    ]);
    expect(r.alerts[3]!.event).toEqual({
      type: 'AlertAcknowledged',
      alert_id: idOf('severe', 30),
      acknowledged_by: 'dispatcher-7',
    });
  });
});

describe('acknowledgements', () => {
  /** A microsleep alert raised at 11 s (active until 71 s), face frames to 90 s, plus the given inputs. */
  const withMicrosleep = (...inputs: FatigueInput[]) =>
    alertLog(run(merge(faceEpisodes(s(0), s(90), { closures: [[s(10), 1_000]] }), inputs)).alerts);

  it('given an AcknowledgeAlert naming no active alert of the session, then it is ignored', () => {
    expect(withMicrosleep(ack(s(20), idOf('microsleep', 99)), ack(s(21), 'not-an-alert'))).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+71 AlertCleared recovered',
    ]);
  });

  it('given an alert acknowledged twice, then only the first acknowledgement is emitted', () => {
    expect(withMicrosleep(ack(s(20), idOf('microsleep', 11)), ack(s(25), idOf('microsleep', 11)))).toEqual([
      '+11 AlertRaised microsleep L2',
      '+20 AlertAcknowledged',
      '+71 AlertCleared recovered',
    ]);
  });

  it('given an acknowledgement from another tenant, then it is ignored', () => {
    expect(withMicrosleep(ack(s(20), idOf('microsleep', 11), { tenant: 'tenant-2' }))).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+71 AlertCleared recovered',
    ]);
  });

  it('given an alert that already cleared, then acknowledging it is ignored', () => {
    expect(withMicrosleep(ack(s(80), idOf('microsleep', 11)))).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+71 AlertCleared recovered',
    ]);
  });

  it('given an acknowledgement stamped before the alert was raised, then it is ignored', () => {
    expect(withMicrosleep(ack(s(10.5), idOf('microsleep', 11)))).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+71 AlertCleared recovered',
    ]);
  });

  it('given an acknowledgement ahead of the watermark, then it waits for the event time it names', () => {
    const { state } = run(faceEpisodes(s(0), s(12), { closures: [[s(10), 1_000]] })); // watermark 9.9 s
    expect(step(state, ack(s(11.5), idOf('microsleep', 11))).outputs).toEqual([]);
    const outputs = step(state, face(s(14))).outputs;
    expect(alertLog(outputs.flatMap((o) => (o.kind === 'alert' ? [o.event] : [])))).toEqual([
      '+11 AlertRaised microsleep L2',
      '+11.5 AlertAcknowledged',
    ]);
  });

  it('given an acknowledgement behind the watermark, then it takes effect at once', () => {
    const { state } = run(faceEpisodes(s(0), s(30), { closures: [[s(10), 1_000]] }));
    const outputs = step(state, ack(s(20), idOf('microsleep', 11))).outputs;
    expect(outputs).toHaveLength(1);
    expect(outputs[0]).toMatchObject({ kind: 'alert', event: { ts: s(20), event: { type: 'AlertAcknowledged' } } });
  });
});

describe('microsleep: an eye closure >= 1 s raises a level-2 alert at once', () => {
  it('given a 1 s closure, then a microsleep alert at its end; it escalates at +30 s and clears 60 s after the closure', () => {
    const r = run(faceEpisodes(s(0), s(90), { closures: [[s(10), 1_000]] }));
    expect(alertLog(r.alerts)).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+71 AlertCleared recovered',
    ]);
    expect(r.alerts[0]!.event).toEqual({
      type: 'AlertRaised',
      alert_id: idOf('microsleep', 11),
      level: 2,
      reason: 'microsleep',
      score: null,
    });
  });

  it('given a 0.9 s closure, then no alert', () => {
    expect(run(faceEpisodes(s(0), s(90), { closures: [[s(10), 900]] })).alerts).toEqual([]);
  });

  it('given the eyes still closed, then the alert comes when the closure reaches 1 s, not when it ends', () => {
    const r = run(faceEpisodes(s(0), s(90), { closures: [[s(10), 3_000]] }));
    expect(alertLog(r.alerts)).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+71 AlertEscalated 2',
      '+73 AlertCleared recovered',
    ]);
  });

  it('given another microsleep while the alert is active, then no new alert and the clearing waits 60 s after it', () => {
    const r = run(
      faceEpisodes(s(0), s(120), {
        closures: [
          [s(10), 1_000],
          [s(40), 1_200],
        ],
      }),
    );
    expect(alertLog(r.alerts)).toEqual([
      '+11 AlertRaised microsleep L2',
      '+41 AlertEscalated 1',
      '+71 AlertEscalated 2',
      '+101 AlertEscalated 3',
      '+101.2 AlertCleared recovered',
    ]);
  });

  it('given the microsleep alert acknowledged, then it no longer escalates', () => {
    const r = run(
      merge(faceEpisodes(s(0), s(90), { closures: [[s(10), 1_000]] }), [ack(s(20), idOf('microsleep', 11))]),
    );
    expect(alertLog(r.alerts)).toEqual([
      '+11 AlertRaised microsleep L2',
      '+20 AlertAcknowledged',
      '+71 AlertCleared recovered',
    ]);
  });
});

describe('face lost for >= 5 s while speed > 10 km/h raises a level-1 alert', () => {
  /** Vehicle frames at 10 Hz; face frames with no face over [lostFrom, lostTo) s. */
  const drive = (lostFrom: number, lostTo: number, speed: (sec: number) => number) =>
    merge(
      every(s(0), s(40), 100, (ts) => vehicle(ts + 50, { speed: speed((ts - T0) / 1000) })),
      every(s(0), s(40), 100, (ts) => face(ts, { detected: ts < s(lostFrom) || ts >= s(lostTo) })),
    );

  it('given the face lost for 10 s at 50 km/h, then raised after 5 s and cleared when the face is back', () => {
    const r = run(drive(10, 20, () => 50));
    expect(alertLog(r.alerts)).toEqual(['+15 AlertRaised face_lost L1', '+20 AlertCleared recovered']);
    expect(r.alerts[0]!.event).toMatchObject({ level: 1, reason: 'face_lost', score: null });
  });

  it('given the face lost for 4.9 s, then no alert', () => {
    expect(run(drive(10, 14.9, () => 50)).alerts).toEqual([]);
  });

  it('given a speed of exactly 10 km/h, then no alert', () => {
    expect(run(drive(10, 30, () => 10)).alerts).toEqual([]);
  });

  it('given the vehicle starting to move after the face was lost, then the 5 s count from the start of the move', () => {
    // the first frame over 10 km/h is at 12.05 s; the first face frame 5 s later is at 17.1 s
    const r = run(drive(10, 30, (sec) => (sec < 12 ? 5 : 50)));
    expect(alertLog(r.alerts)).toEqual(['+17.1 AlertRaised face_lost L1', '+30 AlertCleared recovered']);
  });

  it('given the face-lost alert acknowledged, then AlertAcknowledged (a level-1 alert never escalates)', () => {
    const r = run(
      merge(
        drive(10, 30, () => 50),
        [ack(s(16), idOf('face_lost', 15))],
      ),
    );
    expect(alertLog(r.alerts)).toEqual([
      '+15 AlertRaised face_lost L1',
      '+16 AlertAcknowledged',
      '+30 AlertCleared recovered',
    ]);
  });

  it('given no vehicle stream at all, then the speed is unknown and no alert', () => {
    const r = run(every(s(0), s(40), 100, (ts) => face(ts, { detected: ts < s(10) })));
    expect(r.alerts).toEqual([]);
  });
});
