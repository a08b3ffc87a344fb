import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from './config';
import { VigilError } from './errors';
import { aclCommands, aclEntries, aclPlan } from './kafka-acls';
import { replicationFor } from './kafka';
import { topicNames } from '../schemas/catalogue';
import { topicPlan } from '../schemas/topics';

const refusal = (env: Record<string, string>): VigilError => {
  try {
    loadConfig(env);
  } catch (e) {
    return e as VigilError;
  }
  throw new Error('loadConfig accepted it');
};

describe('Kafka client security settings (VIGIL_KAFKA_SSL*, VIGIL_KAFKA_SASL_*, registry auth)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-ca-'));
  const ca = path.join(dir, 'ca.pem');
  fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is plaintext and unauthenticated by default', () => {
    const c = loadConfig({});
    expect([c.kafka.ssl, c.kafka.sasl, c.schemaRegistryAuth]).toEqual([undefined, undefined, undefined]);
  });

  it('reads TLS with a CA file, SCRAM-SHA-512 credentials and registry basic auth', () => {
    const c = loadConfig({
      VIGIL_KAFKA_SSL: 'on',
      VIGIL_KAFKA_SSL_CA_FILE: ca,
      VIGIL_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      VIGIL_KAFKA_SASL_USERNAME: 'processor',
      VIGIL_KAFKA_SASL_PASSWORD: 's3cret',
      VIGIL_SCHEMA_REGISTRY_USERNAME: 'vigil',
      VIGIL_SCHEMA_REGISTRY_PASSWORD: 'reg',
    });
    expect(c.kafka.ssl).toEqual({ ca: fs.readFileSync(ca, 'utf8'), rejectUnauthorized: true });
    expect(c.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'processor', password: 's3cret' });
    expect(c.schemaRegistryAuth).toEqual({ username: 'vigil', password: 'reg' });
  });

  it.each([
    [
      { VIGIL_KAFKA_SASL_MECHANISM: 'scram-sha-512', VIGIL_KAFKA_SASL_USERNAME: 'api' },
      ['VIGIL_KAFKA_SASL_PASSWORD'],
      /needs VIGIL_KAFKA_SASL_PASSWORD/,
    ],
    [
      { VIGIL_KAFKA_SASL_MECHANISM: 'scram-sha-256' },
      ['VIGIL_KAFKA_SASL_USERNAME', 'VIGIL_KAFKA_SASL_PASSWORD'],
      /needs VIGIL_KAFKA_SASL_USERNAME and VIGIL_KAFKA_SASL_PASSWORD/,
    ],
    [
      { VIGIL_KAFKA_SASL_USERNAME: 'api', VIGIL_KAFKA_SASL_PASSWORD: 'x' },
      ['VIGIL_KAFKA_SASL_MECHANISM'],
      /MECHANISM is none/,
    ],
    [
      { VIGIL_KAFKA_SASL_MECHANISM: 'plain', VIGIL_KAFKA_SASL_USERNAME: 'a', VIGIL_KAFKA_SASL_PASSWORD: 'b' },
      ['VIGIL_KAFKA_SASL_MECHANISM', 'VIGIL_KAFKA_SSL'],
      /password in clear/,
    ],
    [
      { VIGIL_KAFKA_SSL: 'on', VIGIL_KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' },
      ['VIGIL_KAFKA_SSL_CA_FILE'],
      /cannot be read \(ENOENT\)/,
    ],
    [
      { VIGIL_KAFKA_SSL_CA_FILE: '/etc/hostname' },
      ['VIGIL_KAFKA_SSL', 'VIGIL_KAFKA_SSL_CA_FILE'],
      /VIGIL_KAFKA_SSL is off/,
    ],
    [{ VIGIL_SCHEMA_REGISTRY_USERNAME: 'vigil' }, ['VIGIL_SCHEMA_REGISTRY_PASSWORD'], /PASSWORD is missing/],
  ])('refuses %j at start-up naming %j', (env, variables, message) => {
    const err = refusal(env as Record<string, string>);
    expect(err).toBeInstanceOf(VigilError);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.details.variables).toEqual(variables);
    expect(err.message).toMatch(message);
  });

  it('refuses a CA file that holds no PEM certificate', () => {
    const notPem = path.join(dir, 'key.txt');
    fs.writeFileSync(notPem, 'hello');
    expect(refusal({ VIGIL_KAFKA_SSL: 'on', VIGIL_KAFKA_SSL_CA_FILE: notPem }).message).toMatch(
      /holds no PEM certificate/,
    );
  });
});

describe('topic replication from the cluster size', () => {
  const plan = topicPlan({ topicPrefix: 'v', kafka: { partitions: 3 } });
  const eeg = plan['v.telemetry.eeg.v1']!;

  it('gives 3 replicas and min.insync.replicas=2 on three brokers or more, 1 replica and no min ISR on one', () => {
    expect(replicationFor(eeg, 3)).toMatchObject({ replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
    expect(replicationFor(eeg, 5).replicationFactor).toBe(3);
    const one = replicationFor(eeg, 1);
    expect(one.replicationFactor).toBe(1);
    expect(one.configs?.['min.insync.replicas']).toBeUndefined();
  });

  it('keeps a factor and min ISR the settings chose', () => {
    const set = topicPlan({ topicPrefix: 'v', kafka: { partitions: 3, replicationFactor: 2, minInsyncReplicas: 1 } });
    expect(replicationFor(set['v.telemetry.eeg.v1']!, 3)).toMatchObject({
      replicationFactor: 2,
      configs: { 'min.insync.replicas': '1' },
    });
  });
});

describe('per-role ACL plan', () => {
  const t = topicNames('vigil');
  const plan = aclPlan('vigil');
  const writers = (topic: string) =>
    plan
      .filter((r) => r.resourceType === 'TOPIC' && r.name === topic && r.operations.includes('WRITE'))
      .map((r) => r.principal)
      .sort();

  it('lets devices and the gateway write only the telemetry and session topics', () => {
    const deviceTopics = plan.filter((r) => r.principal === 'User:device').map((r) => r.name);
    expect(deviceTopics.sort()).toEqual([t.eeg, t.face, t.game, t.sessions, t.vehicle].sort());
    expect(plan.filter((r) => r.principal === 'User:device').every((r) => !r.operations.includes('READ'))).toBe(true);
  });

  it('has one writer for scores and alerts (the processor) and one for commands (the API)', () => {
    expect(writers(t.scores)).toEqual(['User:processor']);
    expect(writers(t.alerts)).toEqual(['User:processor']);
    expect(writers(t.commands)).toEqual(['User:api']);
    expect(writers(t.scoresWhatIf)).toEqual(['User:jobs']);
  });

  it('lets readers read every topic and write none', () => {
    const reader = plan.filter((r) => r.principal === 'User:reader');
    expect(
      reader
        .filter((r) => r.resourceType === 'TOPIC')
        .map((r) => r.name)
        .sort(),
    ).toEqual(Object.values(t).sort());
    expect(reader.every((r) => !r.operations.includes('WRITE'))).toBe(true);
  });

  it('prints kafka-acls.sh commands and admin-API entries for the same rules', () => {
    const cmds = aclCommands(aclPlan('vigil', ['api']), 'b:9092');
    expect(cmds).toContain(
      "kafka-acls.sh --bootstrap-server b:9092 --command-config admin.properties --add --allow-principal User:api --operation Write --operation Describe --topic 'vigil.commands.v1' --resource-pattern-type literal",
    );
    expect(aclEntries(aclPlan('vigil', ['api'])).length).toBe(
      aclPlan('vigil', ['api']).reduce((n, r) => n + r.operations.length, 0),
    );
  });
});
