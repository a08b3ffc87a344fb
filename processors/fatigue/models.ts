import { VigilError } from '../../core/errors';
import { configProblems, fatigueV1, type FatigueModelConfig } from './config';

/**
 * The fatigue models an analyst can pick by name (`vigil rescore --model <version>`). `fatigue-v1` is
 * the live model (docs/design.md §5); the others are alternatives to compare against it on history.
 * Each is a frozen config with its own `model_version`, so its scores and alert ids never collide
 * with another model's (ids hash the model version).
 */

/**
 * `fatigue-v1-sensitive`: fatigue-v1 tuned to warn earlier, for analysts asking "what would a more
 * cautious model have flagged?". Our choices, not from the literature:
 * - ocular saturates sooner: PERCLOS term at 0.10 instead of 0.12, long-blink share at 0.4 instead of 0.5;
 * - driving: SDLP saturates 0.08 m above the baseline instead of 0.10 m;
 * - EEG: z saturates at 2.5 instead of 3;
 * - reaction: a lapse is a response >= 400 ms instead of 500 ms, saturating at 2 lapses instead of 3;
 * - weights move 0.05 from EEG to ocular (ocular .45, driving .25, eeg .15, reaction .10, yawn .05);
 * - levels enter earlier and leave later: level 1 at >= 40 for 20 s (leave < 30 for 60 s),
 *   level 2 at >= 60 for 10 s (leave < 45 for 120 s).
 * Everything else (windows, baseline, alert rules, event time) is fatigue-v1's.
 */
export const fatigueV1Sensitive: FatigueModelConfig = Object.freeze({
  ...fatigueV1,
  model_version: 'fatigue-v1-sensitive',
  perclosReference: 0.1,
  perclosBaselineMax: 0.09,
  longBlinkShareReference: 0.4,
  sdlpScaleM: 0.08,
  eegZScale: 2.5,
  lapseMs: 400,
  lapseScale: 2,
  weights: Object.freeze({ ocular: 0.45, driving: 0.25, eeg: 0.15, reaction: 0.1, yawn: 0.05 }),
  level1: Object.freeze({ enter: 40, enterForMs: 20_000, leave: 30, leaveForMs: 60_000 }),
  level2: Object.freeze({ enter: 60, enterForMs: 10_000, leave: 45, leaveForMs: 120_000 }),
} satisfies FatigueModelConfig);

/** Every known model by its `model_version`, the live one first. */
export const fatigueModels: Readonly<Record<string, FatigueModelConfig>> = Object.freeze(
  Object.fromEntries([fatigueV1, fatigueV1Sensitive].map((m) => [m.model_version, m])),
);

export const modelVersions = (): string[] => Object.keys(fatigueModels);

/** The model of that version; MODEL_UNKNOWN (not retriable) naming the known ones otherwise. */
export function modelByName(version: string): FatigueModelConfig {
  const model = Object.hasOwn(fatigueModels, version) ? fatigueModels[version] : undefined;
  if (!model) {
    throw new VigilError(
      'MODEL_UNKNOWN',
      `unknown fatigue model ${JSON.stringify(version)}; known models: ${modelVersions().join(', ')}`,
      { details: { model: version, known: modelVersions() } },
    );
  }
  const problems = configProblems(model);
  if (problems.length) {
    throw new VigilError('CONFIG_INVALID', `fatigue model ${version} is not usable: ${problems.join('; ')}`);
  }
  return model;
}
