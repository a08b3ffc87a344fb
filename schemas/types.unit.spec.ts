import avro from 'avsc';
import { avroSchemaOf, catalogue, topicKeys, topicNames, type TopicKey } from './catalogue';
import type { EegBandPower, SessionEvent } from './types';

/**
 * The TypeScript shapes in types.ts are written to match the .avsc files; these checks fail when the
 * two drift: every field of a sample typed value exists in the schema and vice versa, and the sample
 * (with its `event.type` moved into the Avro union branch) is valid Avro.
 */
const samples: { [K in TopicKey]: unknown[] } = {
  sessions: [
    {
      event_id: '6f1c8a3e-1b2d-4c5e-8f90-123456789abc',
      tenant_id: 't',
      session_id: 's',
      ts: 1_700_000_000_000,
      event: { type: 'SessionStarted', driver_id: 'd', vehicle_id: 'v', devices: [{ device_id: 'e', kind: 'EEG' }] },
    } satisfies SessionEvent,
    {
      event_id: '6f1c8a3e-1b2d-4c5e-8f90-123456789abd',
      tenant_id: 't',
      session_id: 's',
      ts: 1,
      event: { type: 'SessionEnded', reason: 'COMPLETED' },
    } satisfies SessionEvent,
  ],
  eeg: [
    {
      event_id: '6f1c8a3e-1b2d-4c5e-8f90-123456789abe',
      tenant_id: 't',
      session_id: 's',
      device_id: 'e',
      seq: 1,
      ts: 1,
      channels: [{ channel: 'Fz', delta_uv2: 1, theta_uv2: 1, alpha_uv2: 1, beta_uv2: 1, gamma_uv2: 1, quality: 1 }],
    } satisfies EegBandPower,
  ],
};

function toAvroShape(value: Record<string, unknown>, ns: string): Record<string, unknown> {
  if (!value.event) return value;
  const { type, ...fields } = value.event as Record<string, unknown>;
  return { ...value, event: { [`${ns}.${String(type)}`]: fields } };
}

describe('schemas and TypeScript types', () => {
  it.each(topicKeys)(
    '%s: sample values of the TypeScript type are valid Avro with no extra or missing field',
    (key) => {
      const schema = avroSchemaOf(key) as { namespace: string; fields: { name: string }[] };
      const type = avro.Type.forSchema(schema as avro.Schema);
      for (const sample of samples[key] as Record<string, unknown>[]) {
        const shaped = toAvroShape(sample, schema.namespace);
        const problems: string[] = [];
        type.isValid(shaped, { errorHook: (p) => problems.push(p.join('.')) });
        expect(problems).toEqual([]);
        expect(Object.keys(sample).sort()).toEqual(schema.fields.map((f) => f.name).sort());
      }
    },
  );

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

  it('names topics <prefix>.<suffix> for every catalogue entry plus dead letters and late events', () => {
    expect(topicNames('vigil')).toEqual({
      ...Object.fromEntries(Object.entries(catalogue).map(([k, s]) => [k, `vigil.${s.suffix}`])),
      dlq: 'vigil.dlq.v1',
      late: 'vigil.late.v1',
    });
  });
});
