import type avro from 'avsc';
import { codecOf, toAvro, type Codec } from '../../core/serde';
import { avroSchemaOf, type TopicKey } from '../../schemas/catalogue';
import { checkBatch, type Validate } from './batch';

/**
 * The same check as `AvroSerde.validate` without a registry: the topic's avsc type and the serde's
 * `path: expected <type>, got <json>` wording. (The int spec runs the real serde.)
 */
const codecs = new Map<TopicKey, Codec>();
const validate: Validate = (key, value) => {
  let c = codecs.get(key);
  if (!c) codecs.set(key, (c = codecOf(avroSchemaOf(key))));
  const problems: string[] = [];
  c.type.isValid(toAvro(value, c.shape), {
    errorHook: (path: string[], v: unknown, t: avro.Type) => {
      const rule = t.typeName === 'record' ? 'a record' : String(t.typeName);
      problems.push(`${path.join('.') || '(value)'}: expected ${rule}, got ${JSON.stringify(v)}`);
    },
  });
  return problems;
};

const eeg = (over: Record<string, unknown> = {}) => ({
  event_id: '0b7e6f7c-3c5e-4f0e-9a57-0c1f4b7d2a11',
  session_id: 'session-0001',
  device_id: 'eeg-1',
  seq: 1,
  ts: 1_767_254_400_000,
  channels: [{ channel: 'Fz', delta_uv2: 1, theta_uv2: 2, alpha_uv2: 3, beta_uv2: 4, gamma_uv2: 5, quality: 0.9 }],
  ...over,
});
const sessionEnded = (reason: string) => ({
  event_id: '0b7e6f7c-3c5e-4f0e-9a57-0c1f4b7d2a12',
  session_id: 'session-0001',
  ts: 1_767_254_400_000,
  event: { type: 'SessionEnded', reason },
});

describe('ingest batch check', () => {
  describe('tenant rule: the key decides', () => {
    it('fills tenant_id from the key when an event has none (absent or null)', () => {
      const r = checkBatch('eeg', [eeg(), eeg({ tenant_id: null, seq: 2 })], 'fleet-a', validate);
      expect(r.ok && r.events.map((e) => e.tenant_id)).toEqual(['fleet-a', 'fleet-a']);
    });

    it('keeps events that name the key tenant', () => {
      const r = checkBatch('eeg', [eeg({ tenant_id: 'fleet-a' })], 'fleet-a', validate);
      expect(r.ok).toBe(true);
    });

    it('refuses the whole batch with 403 when one event names another tenant', () => {
      const r = checkBatch('eeg', [eeg(), eeg({ tenant_id: 'fleet-b' })], 'fleet-a', validate);
      expect(r).toEqual({
        ok: false,
        status: 403,
        total: 1,
        errors: [{ index: 1, field: 'tenant_id', message: expect.stringContaining('"fleet-b"') }],
      });
    });
  });

  describe('schema problems name the event index and the JSON field, in words', () => {
    const errorsOf = (key: 'eeg' | 'sessions' | 'face' | 'game', items: unknown[]) => {
      const r = checkBatch(key, items, 'fleet-a', validate);
      if (r.ok) throw new Error('expected problems');
      expect(r.status).toBe(400);
      return r.errors;
    };

    it('an ISO string as ts: asks for epoch milliseconds', () => {
      expect(errorsOf('eeg', [eeg(), eeg({ ts: '2026-01-01T08:00:00Z' })])).toEqual([
        {
          index: 1,
          field: 'ts',
          message:
            'must be an integer of milliseconds since the Unix epoch (timestamp-millis), got "2026-01-01T08:00:00Z"',
        },
      ]);
    });

    it('a fractional seq and a missing field', () => {
      const { device_id: _, ...noDevice } = eeg({ seq: 1.5 });
      expect(errorsOf('eeg', [noDevice])).toEqual([
        { index: 0, field: 'device_id', message: 'is required: a string' },
        { index: 0, field: 'seq', message: 'must be an integer, got 1.5' },
      ]);
    });

    it('a field inside an array of records', () => {
      const bad = eeg();
      (bad.channels[0] as Record<string, unknown>).quality = 'good';
      expect(errorsOf('eeg', [bad])).toEqual([
        { index: 0, field: 'channels.0.quality', message: 'must be a number, got "good"' },
      ]);
    });

    it('an enum inside a union branch: the symbols and the kind', () => {
      expect(errorsOf('sessions', [sessionEnded('DONE')])).toEqual([
        {
          index: 0,
          field: 'event.reason',
          message: 'must be one of "COMPLETED", "ABORTED", "TIMEOUT", got "DONE" (in SessionEnded)',
        },
      ]);
    });

    it('an unknown event kind: the kinds of the topic', () => {
      const [e] = errorsOf('game', [{ ...sessionEnded('X'), device_id: 'sim', seq: 1, event: { type: 'Crash' } }]);
      expect(e).toMatchObject({ index: 0, field: 'event' });
      expect(e!.message).toMatch(/^must be an object whose "type" is one of "LaneDeparture", "Collision", /);
    });

    it('a nullable field', () => {
      const face = { ...eeg(), face_detected: true, eye_closure: 'closed' } as Record<string, unknown>;
      delete face.channels;
      expect(errorsOf('face', [face])).toEqual([
        { index: 0, field: 'eye_closure', message: 'must be null or a number, got "closed"' },
      ]);
    });

    it('an event that is not an object, and an event_id that is not a UUID', () => {
      expect(errorsOf('eeg', [42, eeg({ event_id: 'e-1' })])).toEqual([
        { index: 0, field: '(value)', message: 'must be an object (EegBandPower), got 42' },
        { index: 1, field: 'event_id', rule: 'uuid', message: 'must be a UUID (8-4-4-4-12 hex digits), got "e-1"' },
      ]);
    });

    it('lists at most maxErrors problems and counts them all', () => {
      const items = Array.from({ length: 30 }, (_, i) => eeg({ seq: 'x', ts: 'y', event_id: `id-${i}` }));
      const r = checkBatch('eeg', items, 'fleet-a', validate, 10);
      expect(r).toMatchObject({ ok: false, status: 400, total: 90 });
      expect(!r.ok && r.errors).toHaveLength(10);
    });
  });
});
