import { testConfig } from '../test/support/env';
import { kafkaFixture, type KafkaFixture } from '../test/support/stack';
import { AvroSerde } from './serde';
import { VigilError } from './errors';
import type { SessionEvent } from '../schemas/types';

const started: SessionEvent = {
  event_id: '0b7a3b58-4a9e-4b8e-9d61-5f0c2f1f6a01',
  tenant_id: 'tenant-a',
  session_id: 'session-1',
  ts: Date.UTC(2026, 0, 1, 8),
  event: {
    type: 'SessionStarted',
    driver_id: 'driver-1',
    vehicle_id: 'truck-7',
    devices: [{ device_id: 'eeg-1', kind: 'EEG' }],
  },
};

describe('Avro serde against the schema registry', () => {
  let fx: KafkaFixture;
  beforeAll(async () => {
    fx = await kafkaFixture(testConfig());
  });
  afterAll(() => fx?.close());

  it('decodes an encoded event back to an equal value, in the Confluent wire format', async () => {
    const bytes = fx.serde.encode('sessions', started);
    expect(bytes.readUInt8(0)).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(fx.serde.schemaIdOf('sessions'));
    const { value } = await fx.serde.decode(bytes);
    expect(value).toEqual(started);
  });

  it('fetches an unknown writer schema once, then decodes without asking the registry again', async () => {
    const fresh = new AvroSerde(testConfig().schemaRegistryUrl, fx.topics);
    const bytes = fx.serde.encode('sessions', started);
    for (let i = 0; i < 100; i++) await fresh.decode(bytes);
    expect(fresh.registryRequests).toBe(1);
  });

  it('decodes synchronously once the writer schema is known, and says when it is not', async () => {
    const fresh = new AvroSerde(testConfig().schemaRegistryUrl, fx.topics);
    const bytes = fx.serde.encode('sessions', started);
    expect(fresh.decodeKnown(bytes)).toBeUndefined();
    await fresh.decode(bytes);
    expect(fresh.decodeKnown(bytes)?.value).toEqual(started);
    expect(() => fresh.decodeKnown(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'EVENT_UNDECODABLE' }));
  });

  it('registers idempotently: the same schema keeps its id', async () => {
    const again = new AvroSerde(testConfig().schemaRegistryUrl, fx.topics);
    await again.register(['sessions']);
    expect(again.schemaIdOf('sessions')).toBe(fx.serde.schemaIdOf('sessions'));
  });

  it('refuses an invalid event naming the field and the rule', () => {
    const bad = { ...started, ts: 'yesterday' } as unknown as SessionEvent;
    expect(() => fx.serde.encode('sessions', bad)).toThrow(VigilError);
    try {
      fx.serde.encode('sessions', bad);
    } catch (e) {
      expect((e as VigilError).code).toBe('EVENT_INVALID');
      expect((e as VigilError).details.problems).toEqual([expect.stringMatching(/^ts: expected long/)]);
    }
  });

  it('calls bytes without the magic byte undecodable and an unknown schema id unknown', async () => {
    await expect(fx.serde.decode(Buffer.from('{"json":true}'))).rejects.toMatchObject({
      code: 'EVENT_UNDECODABLE',
      retriable: false,
    });
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 1, 2]);
    await expect(fx.serde.decode(unknownId)).rejects.toMatchObject({ code: 'SCHEMA_UNKNOWN', retriable: false });
  });
});
