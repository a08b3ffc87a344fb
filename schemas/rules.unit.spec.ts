import { avroSchemaOf, topicKeys, type TopicKey } from './catalogue';
import {
  DEFAULT_TS_WINDOW,
  describeViolations,
  ruleError,
  ruleTable,
  tsWindowViolation,
  violationsOf,
  TS_MAX,
} from './rules';

const T = Date.UTC(2026, 11, 6, 12);
const face = (over: Record<string, unknown> = {}) => ({
  event_id: '6f1c2b9e-0a4d-4c1e-9a7b-3d2f1e0c9b8a',
  tenant_id: 'fleet-a',
  session_id: 'session-0001',
  device_id: 'cam-1',
  seq: 7,
  ts: T,
  face_detected: true,
  eye_closure: 0.3,
  mouth_open: 0.1,
  head_pitch_deg: 5,
  head_yaw_deg: -3,
  head_roll_deg: 0,
  ...over,
});
const eeg = (quality: number, beta: number) => ({
  ...face(),
  channels: [
    { channel: 'Fz', delta_uv2: 1, theta_uv2: 2, alpha_uv2: 3, beta_uv2: 4, gamma_uv2: 5, quality: 0.9 },
    { channel: 'Cz', delta_uv2: 1, theta_uv2: 2, alpha_uv2: 3, beta_uv2: beta, gamma_uv2: 5, quality },
  ],
});

describe('the rule table', () => {
  it('finds nothing wrong with a frame inside every range', () => {
    expect(violationsOf('face', face())).toEqual([]);
    expect(ruleError('face', face())).toBeUndefined();
  });

  it.each([
    ['eye_closure', 5.0, 'fraction'],
    ['eye_closure', -1, 'fraction'],
    ['mouth_open', Number.NaN, 'fraction'],
    ['head_yaw_deg', 720, 'angle'],
    ['ts', 0, 'timestamp'],
    ['ts', -5, 'timestamp'],
    ['ts', 8.7e15, 'timestamp'],
    ['ts', T + 0.5, 'timestamp'],
    ['seq', -1, 'seq'],
    ['seq', 2 ** 60, 'seq'],
    ['session_id', 'x', 'session_id'],
    ['session_id', 'has space in it', 'session_id'],
    ['tenant_id', '', 'tenant_id'],
    ['event_id', 'not-a-uuid', 'uuid'],
    ['device_id', 'cam\u0000', 'text'],
    ['device_id', 'a'.repeat(129), 'text'],
  ])('given a face frame with %s = %p, it names the field and the rule %s', (field, value, rule) => {
    const vs = violationsOf('face', face({ [field]: value }));
    expect(vs).toEqual([{ field, rule, message: expect.stringMatching(/^must be /) }]);
  });

  it('names the array element of a nested field: channels.1.quality, channels.1.beta_uv2', () => {
    expect(violationsOf('eeg', eeg(1.5, -2)).map((v) => [v.field, v.rule])).toEqual([
      ['channels.1.beta_uv2', 'band_power'],
      ['channels.1.quality', 'fraction'],
    ]);
  });

  it('checks fields of a union branch by the path event.<field>', () => {
    const game = {
      ...face(),
      event: { type: 'StimulusResponse', stimulus_id: 'st-1', reaction_ms: -40 },
    };
    expect(violationsOf('game', game)).toEqual([
      { field: 'event.reaction_ms', rule: 'reaction_ms', message: expect.any(String) },
    ]);
    expect(violationsOf('vehicle', { ...face(), speed_kmh: 80, lane_offset_m: 1e308, steering_deg: 0 })).toEqual([
      { field: 'lane_offset_m', rule: 'lane_offset', message: expect.stringContaining('1e+308') },
    ]);
  });

  it('refuses control characters in strings no field rule names', () => {
    expect(violationsOf('face', face({ extra: { note: 'a\u0007b' } }))).toEqual([
      { field: 'extra.note', rule: 'text', message: expect.any(String) },
    ]);
  });

  it('leaves null and absent optional fields to the Avro schema', () => {
    expect(violationsOf('face', face({ eye_closure: null, mouth_open: undefined }))).toEqual([]);
  });

  it('describes at most five violations in one line, then counts the rest', () => {
    const vs = violationsOf(
      'face',
      face({ eye_closure: 2, mouth_open: 2, head_pitch_deg: 999, head_yaw_deg: 999, head_roll_deg: 999, seq: -1 }),
    );
    expect(vs).toHaveLength(6);
    expect(describeViolations(vs)).toMatch(/; and 1 more$/);
    expect(ruleError('face', face({ seq: -1 }))).toMatchObject({ code: 'RULE_VIOLATION', retriable: false });
  });

  it.each(topicKeys)('%s: every rule of the table stands in its field doc of the .avsc ("Rule: ...")', (key) => {
    const docs = new Map<string, string[]>();
    const walk = (s: unknown, path: string): void => {
      if (Array.isArray(s)) return s.forEach((b) => walk(b, path));
      if (typeof s !== 'object' || s === null) return;
      const t = s as { type?: unknown; fields?: { name: string; type: unknown; doc?: string }[]; items?: unknown };
      if (t.type === 'record') {
        for (const f of t.fields ?? []) {
          const p = path ? `${path}.${f.name}` : f.name;
          docs.set(p, [...(docs.get(p) ?? []), f.doc ?? '']);
          walk(f.type, p);
        }
      } else if (t.type === 'array') walk(t.items, `${path}[]`);
      else if (typeof t.type === 'object') walk(t.type, path);
    };
    walk(avroSchemaOf(key as TopicKey), '');
    for (const [path, rule] of Object.entries(ruleTable[key as TopicKey])) {
      const found = docs.get(path) ?? [];
      expect({ path, docs: found.length }).toEqual({ path, docs: expect.any(Number) });
      expect(found.length).toBeGreaterThan(0);
      for (const doc of found) expect(doc).toContain(`Rule: ${rule.text}.`);
    }
  });
});

describe('the accepted ts window', () => {
  const w = DEFAULT_TS_WINDOW;
  it('accepts ts from 24 h behind to 60 s ahead of the receiving clock', () => {
    expect(tsWindowViolation(T, T, w)).toBeUndefined();
    expect(tsWindowViolation(T + 60_000, T, w)).toBeUndefined();
    expect(tsWindowViolation(T - 24 * 3_600_000, T, w)).toBeUndefined();
  });
  it('refuses a ts a year ahead as ts_ahead and a year behind as ts_too_old', () => {
    const year = 365 * 24 * 3_600_000;
    expect(tsWindowViolation(T + year, T, w)).toMatchObject({ field: 'ts', rule: 'ts_ahead' });
    expect(tsWindowViolation(T - year, T, w)).toMatchObject({ field: 'ts', rule: 'ts_too_old' });
    expect(tsWindowViolation(T + 60_001, T, w)).toMatchObject({ rule: 'ts_ahead' });
    expect(tsWindowViolation(TS_MAX, T, w)).toMatchObject({ rule: 'ts_ahead' });
  });
});
