import { loadConfig } from './config';
import { VigilError } from './errors';

describe('configuration', () => {
  it('gives working local defaults when nothing is set', () => {
    const c = loadConfig({});
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.kafka.partitions).toBe(12);
    expect(c.api.port).toBe(8080);
    expect(c.schemaRegistryUrl).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
  });

  it('parses lists and numbers from their variables', () => {
    const c = loadConfig({ VIGIL_KAFKA_BROKERS: 'a:1, b:2', VIGIL_API_PORT: '9000', VIGIL_TOPIC_PREFIX: 'x1' });
    expect(c.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(c.api.port).toBe(9000);
    expect(c.topicPrefix).toBe('x1');
  });

  it.each([
    ['VIGIL_API_PORT', 'eighty'],
    ['VIGIL_API_PORT', '70000'],
    ['VIGIL_KAFKA_BROKERS', 'localhost'],
    ['VIGIL_DATABASE_URL', 'mysql://x@y/z'],
    ['VIGIL_LOG_LEVEL', 'loud'],
    ['VIGIL_TOPIC_PARTITIONS', '0'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    let err: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VigilError);
    expect((err as VigilError).code).toBe('CONFIG_INVALID');
    expect((err as VigilError).message).toContain(`${name}="${value}"`);
    expect((err as VigilError).details.variables).toEqual([name]);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ VIGIL_API_PORT: '' }).api.port).toBe(8080);
  });
});
