import { buildAlert, buildScore } from '../../test/support/build';
import { Tally, compareModels, formatComparison } from './summary';

const T0 = Date.UTC(2026, 4, 4, 6);
const score = (session: string, end: number, value: number, level: number, model: string) =>
  buildScore({ session_id: session, ts: T0 + end * 1000, score: value, level, model_version: model });
const raised = (session: string, reason: 'drowsy' | 'severe' | 'microsleep') =>
  buildAlert('AlertRaised', {
    session_id: session,
    ts: T0,
    alert_id: `${session}-${reason}`,
    level: reason === 'drowsy' ? 1 : 2,
    reason,
    score: 50,
  });
const cleared = (session: string) =>
  buildAlert('AlertCleared', { session_id: session, ts: T0, alert_id: `${session}-drowsy`, reason: 'recovered' });

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
