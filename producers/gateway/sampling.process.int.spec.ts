import { randomBytes } from 'node:crypto';
import { eventually, processEnv, testConfig } from '../../test/support/env';
import { pipelineFixture, type PipelineFixture } from '../../test/support/pipeline';
import { readAll } from '../../test/support/stack';
import { processGroup, runVigil, type VigilProcessGroup } from '../../test/support/processes';
import { sessionEvents } from '../simulator/session';

/**
 * `vigil gateway` from the build with tracing on and VIGIL_TRACE_SAMPLE_RATIO=0: a request that starts
 * a trace is not recorded but still propagates its trace id (flags 00) into the Kafka records; a
 * request whose caller sampled its trace keeps that decision (parent-based). One `send` span per
 * request: every record of a request carries the same parent span.
 */
const config = testConfig();
const plan = {
  seed: 6,
  index: 0,
  tenantId: 'fleet-s',
  startTs: Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000,
  durationMs: 2_000,
};
const events = [...sessionEvents({ ...plan, profile: 'alert' })];
const of = (topic: string) => events.filter((e) => e.topic === topic).map((e) => e.event);

describe('vigil gateway with traces sampled out (process from dist/)', () => {
  let fx: PipelineFixture;
  let vigil: VigilProcessGroup | undefined;

  beforeAll(async () => {
    fx = await pipelineFixture(config);
  });
  afterAll(async () => {
    await vigil?.stopAll('SIGKILL');
    await fx?.close();
  });

  it('propagates an unsampled trace into the records and keeps a caller sampled trace sampled', async () => {
    const env = processEnv(config, {
      VIGIL_DATABASE_URL: fx.databaseUrl,
      VIGIL_GATEWAY_PORT: '0',
      VIGIL_TRACING: 'on',
      VIGIL_TRACE_SAMPLE_RATIO: '0',
      VIGIL_ZIPKIN_URL: '',
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      VIGIL_LOG_LEVEL: 'info',
    });
    vigil = processGroup(env);
    const key = /^(vgl_\S+)$/m.exec(
      await runVigil(['keys', 'create', '--tenant', 'fleet-s', '--role', 'device'], env),
    )![1]!;
    const gateway = vigil.start(['gateway']);
    const listening = await eventually(
      async () =>
        /"url":"(http:\/\/[^"]+)".*gateway listening|gateway listening.*"url":"(http:\/\/[^"]+)"/.exec(
          gateway.output(),
        ),
      (m) => m !== null,
      30_000,
    );
    const url = listening?.[1] ?? listening?.[2];
    if (!url) throw new Error(`gateway did not start:\n${gateway.output()}`);
    expect(
      await eventually(
        () => fetch(`${url}/health/ready`).then((r) => r.status),
        (s) => s === 200,
        30_000,
      ),
    ).toBe(200);
    const post = (stream: string, body: unknown[], traceparent?: string) =>
      fetch(`${url}/v1/ingest/${stream}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${key}`,
          ...(traceparent ? { traceparent } : {}),
        },
        body: JSON.stringify(body),
      });

    // No traceparent: a new trace, sampled out by the ratio 0, still named in the response and records.
    const unsampled = await post('eeg', of('eeg').slice(0, 3));
    expect(unsampled.status).toBe(202);
    const [, traceId] = /^00-([0-9a-f]{32})-[0-9a-f]{16}-00$/.exec(unsampled.headers.get('traceparent') ?? '') ?? [];
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const eegRecords = await readAll(fx.kafka, fx.topics.eeg);
    expect(eegRecords).toHaveLength(3);
    const eegParents = new Set(eegRecords.map((r) => String(r.headers.traceparent)));
    expect(eegParents.size).toBe(1);
    expect([...eegParents][0]).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));

    // The caller sampled its trace: the gateway keeps it sampled whatever its own ratio.
    const callerTrace = randomBytes(16).toString('hex');
    const sampled = await post(
      'face',
      of('face').slice(0, 3),
      `00-${callerTrace}-${randomBytes(8).toString('hex')}-01`,
    );
    expect(sampled.status).toBe(202);
    expect(sampled.headers.get('traceparent')).toMatch(new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-01$`));
    const faceRecords = await readAll(fx.kafka, fx.topics.face);
    expect(faceRecords).toHaveLength(3);
    const faceParents = new Set(faceRecords.map((r) => String(r.headers.traceparent)));
    expect(faceParents.size).toBe(1);
    expect([...faceParents][0]).toMatch(new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-01$`));
  });
});
