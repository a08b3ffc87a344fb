import type { AlertEvent, FatigueScored } from '../../schemas/types';
import { Tally, compareModels, formatComparison } from './summary';

const T0 = Date.UTC(2026, 4, 4, 6);
const score = (session: string, end: number, value: number, level: number, model: string): FatigueScored => ({
  event_id: `e-${session}-${end}-${model}`,
  tenant_id: 't',
  session_id: session,
  ts: T0 + end * 1000,
  window_start_ts: T0 + (end - 60) * 1000,
  window_end_ts: T0 + end * 1000,
  score: value,
  level,
  components: { ocular: 0.5, driving: null, eeg: null, reaction: 0, yawn: 0 },
  features: {
    perclos: 0.1,
    long_blink_share: 0,
    sdlp_m: null,
    lane_departures: 0,
    eeg_ratio: null,
    eeg_ratio_z: null,
    lapses: 0,
    yawns: 0,
  },
  baseline_ready: false,
  model_version: model,
});
const raised = (session: string, reason: 'drowsy' | 'severe' | 'microsleep'): AlertEvent => ({
  event_id: `a-${session}-${reason}`,
  tenant_id: 't',
  session_id: session,
  ts: T0,
  event: {
    type: 'AlertRaised',
    alert_id: `${session}-${reason}`,
    level: reason === 'drowsy' ? 1 : 2,
    reason,
    score: 50,
  },
});
const cleared = (session: string): AlertEvent => ({
  event_id: `c-${session}`,
  tenant_id: 't',
  session_id: session,
  ts: T0,
  event: { type: 'AlertCleared', alert_id: `${session}-drowsy`, reason: 'recovered' },
});

describe('rescore comparison', () => {
  const live = new Tally('live');
  const whatIf = new Tally('fatigue-v1-sensitive');
  // As read back from Avro: float32 values near the one-decimal scores.
  [10, 20, Math.fround(33.1)].forEach((v, i) => live.addScore(score('s1', 5 * (i + 1), v, 0, 'fatigue-v1')));
  [15, 30, 52].forEach((v, i) => whatIf.addScore(score('s1', 5 * (i + 1), v, i === 2 ? 1 : 0, 'fatigue-v1-sensitive')));
  whatIf.addScore(score('s2', 5, 40, 0, 'fatigue-v1-sensitive'));
  whatIf.addAlert(raised('s1', 'drowsy'));
  whatIf.addAlert(raised('s1', 'microsleep'));
  whatIf.addAlert(cleared('s1'));
  live.addAlert(raised('s1', 'microsleep'));

  it('compares mean, max, level and alerts raised per session, sessions seen on either side', () => {
    expect(compareModels(whatIf, live)).toEqual([
      {
        session_id: 's1',
        whatIf: {
          model: 'fatigue-v1-sensitive',
          windows: 3,
          mean: 32.3,
          max: 52,
          maxLevel: 1,
          alerts: 2,
          alertsByReason: { drowsy: 1, microsleep: 1 },
        },
        live: {
          model: 'fatigue-v1',
          windows: 3,
          mean: 21,
          max: 33.1,
          maxLevel: 0,
          alerts: 1,
          alertsByReason: { microsleep: 1 },
        },
        meanDelta: 11.3,
        windowDelta: 0,
      },
      {
        session_id: 's2',
        whatIf: {
          model: 'fatigue-v1-sensitive',
          windows: 1,
          mean: 40,
          max: 40,
          maxLevel: 0,
          alerts: 0,
          alertsByReason: {},
        },
        live: { model: 'live', windows: 0, mean: null, max: null, maxLevel: null, alerts: 0, alertsByReason: {} },
        meanDelta: null,
        windowDelta: 1,
      },
    ]);
  });

  it('prints two aligned lines per session, live first', () => {
    expect(formatComparison(compareModels(whatIf, live)).split('\n')).toEqual([
      'session  side     model                 windows  mean   max  level  alerts  by reason',
      's1       live     fatigue-v1                  3  21.0  33.1      0       1  microsleep:1',
      '         what-if  fatigue-v1-sensitive        3  32.3  52.0      1       2  drowsy:1 microsleep:1',
      's2       live     -                           0     -     -      -       0',
      '         what-if  fatigue-v1-sensitive        1  40.0  40.0      0       0',
    ]);
  });
});
