import type avro from 'avsc';
import { codecOf, toAvro } from '../core/serde';
import { avroSchemaOf, catalogue, topicKeys, topicNames, type TopicKey, type ValueOf } from './catalogue';

/**
 * The TypeScript shapes in types.ts are written to match the .avsc files; these checks fail when the
 * two drift. Each sample below is typed (`ValueOf<K>`, checked by the compiler) and must be valid Avro
 * (checked by avsc), with exactly the schema's fields at every level, for every union branch.
 */
const base = {
  event_id: '6f1c8a3e-1b2d-4c5e-8f90-123456789abc',
  tenant_id: 't',
  session_id: 's',
  ts: 1_700_000_000_000,
};
const dev = { ...base, device_id: 'd', seq: 1 };
const components = { ocular: 0.5, driving: null, eeg: null, reaction: 0, yawn: 0 };
const features = {
  perclos: 0.1,
  long_blink_share: 0.2,
  sdlp_m: null,
  lane_departures: 0,
  eeg_ratio: null,
  eeg_ratio_z: null,
  lapses: 1,
  yawns: 0,
};

const scoreSamples: ValueOf<'scores'>[] = [
  {
    ...base,
    window_start_ts: 1,
    window_end_ts: 2,
    score: 42.5,
    level: 0,
    components,
    features,
    baseline_ready: false,
    model_version: 'fatigue-v1',
  },
];
const alertSamples: ValueOf<'alerts'>[] = [
  { ...base, event: { type: 'AlertRaised', alert_id: 'a', level: 2, reason: 'microsleep', score: null } },
  { ...base, event: { type: 'AlertEscalated', alert_id: 'a', level: 2, count: 1 } },
  { ...base, event: { type: 'AlertAcknowledged', alert_id: 'a', acknowledged_by: 'u' } },
  { ...base, event: { type: 'AlertCleared', alert_id: 'a', reason: 'recovered' } },
];

const samples: { [K in TopicKey]: ValueOf<K>[] } = {
  sessions: [
    {
      ...base,
      event: { type: 'SessionStarted', driver_id: 'd', vehicle_id: 'v', devices: [{ device_id: 'e', kind: 'EEG' }] },
    },
    { ...base, event: { type: 'SessionEnded', reason: 'COMPLETED' } },
  ],
  eeg: [
    {
      ...dev,
      channels: [{ channel: 'Fz', delta_uv2: 1, theta_uv2: 1, alpha_uv2: 1, beta_uv2: 1, gamma_uv2: 1, quality: 1 }],
    },
  ],
  face: [
    {
      ...dev,
      face_detected: true,
      eye_closure: 0.1,
      mouth_open: 0.2,
      head_pitch_deg: 1,
      head_yaw_deg: 2,
      head_roll_deg: 3,
    },
    {
      ...dev,
      face_detected: false,
      eye_closure: null,
      mouth_open: null,
      head_pitch_deg: null,
      head_yaw_deg: null,
      head_roll_deg: null,
    },
  ],
  vehicle: [{ ...dev, speed_kmh: 80, lane_offset_m: 0.1, steering_deg: -2 }],
  game: [
    { ...dev, event: { type: 'LaneDeparture', side: 'LEFT', lane_offset_m: -1.9 } },
    { ...dev, event: { type: 'Collision', object: 'barrier', speed_kmh: 40 } },
    { ...dev, event: { type: 'StimulusShown', stimulus_id: 'x' } },
    { ...dev, event: { type: 'StimulusResponse', stimulus_id: 'x', reaction_ms: 320 } },
    { ...dev, event: { type: 'StimulusMissed', stimulus_id: 'x', timeout_ms: 3000 } },
  ],
  scores: scoreSamples,
  alerts: alertSamples,
  commands: [{ ...base, event: { type: 'AcknowledgeAlert', alert_id: 'a', acknowledged_by: 'u' } }],
  scoresWhatIf: scoreSamples.map((s) => ({ ...s, model_version: 'fatigue-v1-sensitive' })),
  alertsWhatIf: alertSamples,
};

type Json = Record<string, unknown>;

/** Field-name mismatches between a value and a record type, at every nesting level. */
function fieldDrift(type: avro.Type, value: unknown, path = ''): string[] {
  if (type.typeName === 'record') {
    const rec = type as avro.types.RecordType;
    const want = rec.fields.map((f) => f.name).sort();
    const got = Object.keys(value as Json).sort();
    const drift =
      JSON.stringify(want) === JSON.stringify(got) ? [] : [`${path || '(root)'}: schema ${want} vs type ${got}`];
    return drift.concat(rec.fields.flatMap((f) => fieldDrift(f.type, (value as Json)[f.name], `${path}.${f.name}`)));
  }
  if (type.typeName === 'array')
    return ((value as unknown[]) ?? []).flatMap((v, i) =>
      fieldDrift((type as avro.types.ArrayType).itemsType, v, `${path}[${i}]`),
    );
  if (type.typeName === 'union:wrapped') {
    const [name, inner] = Object.entries(value as Json)[0]!;
    const branch = (type as avro.types.WrappedUnionType).types.find((t) => t.name === name)!;
    return fieldDrift(branch, inner, `${path}<${name}>`);
  }
  if (type.typeName === 'union:unwrapped' && value !== null && typeof value === 'object') {
    const branch = (type as avro.types.UnwrappedUnionType).types.find((t) => t.typeName === 'record')!;
    return fieldDrift(branch, value, path);
  }
  return [];
}

describe('schemas and TypeScript types', () => {
  it.each(topicKeys)('%s: typed samples are valid Avro with exactly the schema fields', (key) => {
    const { type, shape } = codecOf(avroSchemaOf(key));
    for (const sample of samples[key]) {
      const shaped = toAvro(sample, shape);
      const problems: string[] = [];
      type.isValid(shaped, { errorHook: (p) => problems.push(p.join('.')) });
      expect(problems).toEqual([]);
      expect(fieldDrift(type, shaped)).toEqual([]);
    }
  });

  it.each(topicKeys)('%s: samples cover every kind of the event union', (key) => {
    const { shape } = codecOf(avroSchemaOf(key));
    const kinds = samples[key].flatMap((s) => ('event' in s ? [(s.event as { type: string }).type] : []));
    expect(new Set(kinds)).toEqual(new Set(shape.branches.keys()));
  });

  it('documents every field of every schema', () => {
    const undocumented: string[] = [];
    const walk = (t: unknown, where: string): void => {
      if (Array.isArray(t)) return t.forEach((b, i) => walk(b, `${where}[${i}]`));
      if (!t || typeof t !== 'object') return;
      const o = t as { type?: unknown; fields?: { name: string; doc?: string; type: unknown }[]; items?: unknown };
      for (const f of o.fields ?? []) {
        if (!f.doc) undocumented.push(`${where}.${f.name}`);
        walk(f.type, `${where}.${f.name}`);
      }
      if (o.items) walk(o.items, where);
      if (o.type && typeof o.type === 'object') walk(o.type, where);
    };
    for (const key of topicKeys) walk(avroSchemaOf(key), key);
    expect(undocumented).toEqual([]);
  });

  it('names topics <prefix>.<suffix> for every catalogue entry plus dead letters, late events and the changelog', () => {
    expect(topicNames('vigil')).toEqual({
      ...Object.fromEntries(Object.entries(catalogue).map(([k, s]) => [k, `vigil.${s.suffix}`])),
      dlq: 'vigil.dlq.v1',
      late: 'vigil.late.v1',
      changelog: 'vigil.fatigue.changelog.v1',
    });
  });
});
