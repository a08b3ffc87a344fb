import { configProblems, fatigueV1 } from './config';
import { fatigueModels, fatigueV1Sensitive, modelByName, modelVersions } from './models';
import { alertLog, drive, run, sessionEnded, sessionStarted, T0 } from './testing';

describe('fatigue model registry', () => {
  it('knows the live model first and the sensitive alternative, by model_version', () => {
    expect(modelVersions()).toEqual(['fatigue-v1', 'fatigue-v1-sensitive']);
    expect(modelByName('fatigue-v1')).toBe(fatigueV1);
    expect(modelByName('fatigue-v1-sensitive')).toBe(fatigueV1Sensitive);
  });

  it('refuses an unknown name with MODEL_UNKNOWN listing the known models', () => {
    expect(() => modelByName('fatigue-v2')).toThrow(
      expect.objectContaining({
        code: 'MODEL_UNKNOWN',
        retriable: false,
        message: 'unknown fatigue model "fatigue-v2"; known models: fatigue-v1, fatigue-v1-sensitive',
      }),
    );
    // Not a prototype property either.
    expect(() => modelByName('toString')).toThrow(expect.objectContaining({ code: 'MODEL_UNKNOWN' }));
  });

  it('holds only usable, frozen configs', () => {
    for (const m of Object.values(fatigueModels)) {
      expect(configProblems(m)).toEqual([]);
      expect(Object.isFrozen(m)).toBe(true);
      expect(Object.isFrozen(m.weights)).toBe(true);
    }
  });

  it('the sensitive model scores the same windows higher and warns earlier', () => {
    const inputs = [
      sessionStarted(T0),
      ...drive({ from: T0, durationMs: 8 * 60_000, seed: 3, fatigue: (t) => Math.min(1, t / (8 * 60_000)) }),
      sessionEnded(T0 + 8 * 60_000),
    ];
    const live = run(inputs);
    const sensitive = run(inputs, { config: fatigueV1Sensitive });
    expect(sensitive.scores.map((s) => s.window_end_ts)).toEqual(live.scores.map((s) => s.window_end_ts));
    expect(new Set(sensitive.scores.map((s) => s.model_version))).toEqual(new Set(['fatigue-v1-sensitive']));
    const mean = (xs: { score: number }[]) => xs.reduce((a, s) => a + s.score, 0) / xs.length;
    expect(mean(sensitive.scores)).toBeGreaterThan(mean(live.scores));
    const raised = (r: typeof live) => alertLog(r.alerts).filter((l) => l.includes('AlertRaised'));
    expect(raised(live)).toEqual(['+350 AlertRaised drowsy L1', '+430 AlertRaised severe L2']);
    expect(raised(sensitive)).toEqual(['+315 AlertRaised drowsy L1', '+315 AlertRaised severe L2']);
  });
});
