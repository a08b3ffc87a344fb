import * as fs from 'node:fs';
import * as path from 'node:path';
import type {
  AlertEvent,
  Command,
  EegBandPower,
  FaceFrame,
  FatigueScored,
  GameEvent,
  SessionEvent,
  VehicleFrame,
} from './types';

/**
 * The event catalogue (docs/design.md §2): each topic's name suffix, its Avro schema file and the
 * TypeScript shape of its values. Topic names are `<prefix>.<suffix>` (prefix `vigil` in production,
 * unique per test); subjects follow TopicNameStrategy: `<topic>-value`.
 */
export interface TopicSpec<T> {
  /** Suffix after the prefix, e.g. `sessions.v1`. */
  suffix: string;
  /**
   * The Avro contract the topic carries: its `.avsc` in schemas/avro and its history in
   * schemas/history/<schema>/. Usually the suffix; a topic reusing another's records names that one.
   */
  schema: string;
  schemaFile: string;
  /** Phantom field carrying the value type; never set. */
  readonly _value?: T;
}

const spec = <T>(suffix: string, schema = suffix): TopicSpec<T> => ({ suffix, schema, schemaFile: `${schema}.avsc` });

export const catalogue = {
  sessions: spec<SessionEvent>('sessions.v1'),
  eeg: spec<EegBandPower>('telemetry.eeg.v1'),
  face: spec<FaceFrame>('telemetry.face.v1'),
  vehicle: spec<VehicleFrame>('telemetry.vehicle.v1'),
  game: spec<GameEvent>('game.events.v1'),
  scores: spec<FatigueScored>('fatigue.scores.v1'),
  alerts: spec<AlertEvent>('fatigue.alerts.v1'),
  commands: spec<Command>('commands.v1'),
  // `vigil rescore` output: another model's scores and alerts over history, same records, same keys
  // and partitioning as the live topics, kept apart so no live reader mistakes them for live ones.
  scoresWhatIf: spec<FatigueScored>('fatigue.scores.whatif.v1', 'fatigue.scores.v1'),
  alertsWhatIf: spec<AlertEvent>('fatigue.alerts.whatif.v1', 'fatigue.alerts.v1'),
} as const;

export type TopicKey = keyof typeof catalogue;
export type ValueOf<K extends TopicKey> =
  (typeof catalogue)[K] extends TopicSpec<infer T extends { session_id: string }> ? T : never;

/**
 * Topics whose values are not catalogue events: dead letters and late arrivals (bytes as received),
 * and the fatigue processor's compacted state changelog (its own encoding, keyed by session).
 */
const rawTopics = { dlq: 'dlq.v1', late: 'late.v1', changelog: 'fatigue.changelog.v1' } as const;
export type RawTopicKey = keyof typeof rawTopics;

export type TopicNames = Record<TopicKey | RawTopicKey, string>;

export function topicNames(prefix: string): TopicNames {
  const suffixes = { ...Object.fromEntries(Object.entries(catalogue).map(([k, s]) => [k, s.suffix])), ...rawTopics };
  return Object.fromEntries(Object.entries(suffixes).map(([k, suffix]) => [k, `${prefix}.${suffix}`])) as TopicNames;
}

export const topicKeys = Object.keys(catalogue) as TopicKey[];

export const subjectOf = (topic: string): string => `${topic}-value`;

/** The schemas folder, found from this file whether it runs from source or from dist/. */
function schemasDir(): string {
  for (const dir of [path.join(__dirname, 'avro'), path.join(__dirname, '..', '..', 'schemas', 'avro')]) {
    if (fs.existsSync(dir)) return dir;
  }
  throw new Error(`schemas/avro not found from ${__dirname}`);
}

const parsed = new Map<TopicKey, object>();

/** The parsed `.avsc` of a topic (read once). */
export function avroSchemaOf(key: TopicKey): object {
  let schema = parsed.get(key);
  if (!schema) {
    schema = JSON.parse(fs.readFileSync(path.join(schemasDir(), catalogue[key].schemaFile), 'utf8')) as object;
    parsed.set(key, schema);
  }
  return schema;
}
