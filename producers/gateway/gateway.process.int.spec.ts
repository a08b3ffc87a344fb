import { randomBytes } from 'node:crypto';
import { eventually, processEnv, testConfig } from '../../test/support/env';
import { pipelineFixture, type PipelineFixture } from '../../test/support/pipeline';
import { readAll } from '../../test/support/stack';
import { processGroup, runVigil, type VigilProcessGroup } from '../../test/support/processes';
import { sessionEvents } from '../simulator/session';
import type { EegBandPower } from '../../schemas/types';

/**
 * `vigil keys create` and `vigil gateway` as processes from the build (npm run build first), with
 * OpenTelemetry started by main: the device's trace continues through the gateway's HTTP span into
 * the Kafka records' `traceparent` header.
 */
const config = testConfig();
/** Near now (whole minutes): the gateway refuses a ts more than 24 h behind its clock or 60 s ahead. */
const plan = {
  seed: 5,
  index: 0,
  tenantId: 'fleet-t',
  startTs: Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000,
  durationMs: 2_000,
};
const eeg = [...sessionEvents({ ...plan, profile: 'alert' })].flatMap((e) =>
  e.topic === 'eeg' ? [e.event as EegBandPower] : [],
);

describe('vigil gateway and vigil keys (processes from dist/)', () => {
  let fx: PipelineFixture;
  let env: Record<string, string>;
  let vigil: VigilProcessGroup | undefined;

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    env = processEnv(config, {
      VIGIL_DATABASE_URL: fx.databaseUrl,
      VIGIL_GATEWAY_PORT: '0',
      VIGIL_TRACING: 'on',
      VIGIL_ZIPKIN_URL: '',
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      // core/telemetry.ts leaves the SDK's default OTLP metrics and logs exporters on (localhost:4318):
      // with no collector, shutdown waits ~12 s to flush them. Off here so SIGTERM exits promptly.
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      VIGIL_LOG_LEVEL: 'info',
    });
    vigil = processGroup(env);
  });
  afterAll(async () => {
    await vigil?.stopAll('SIGKILL');
    await fx?.close();
  });

  it('creates a device key from the command line, printing it once', async () => {
    const out = await runVigil(['keys', 'create', '--tenant', 'fleet-t', '--role', 'device', '--label', 'cab 1'], env);
    expect(out).toMatch(/^vgl_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/m);
    const listed = await runVigil(['keys', 'list', '--tenant', 'fleet-t'], env);
    expect(listed).toMatch(/\tfleet-t\tdevice\tactive\tcab 1/);
    expect(listed).not.toMatch(/vgl_/);
  });

  it('carries the caller trace from the HTTP request into the Kafka headers, and stops cleanly', async () => {
    const key = /^(vgl_\S+)$/m.exec(
      await runVigil(['keys', 'create', '--tenant', 'fleet-t', '--role', 'device'], env),
    )![1]!;
    const gateway = vigil!.start(['gateway']);
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
    const ready = await eventually(
      () => fetch(`${url}/health/ready`).then((r) => r.status),
      (s) => s === 200,
      30_000,
    );
    expect(ready).toBe(200);

    const traceId = randomBytes(16).toString('hex');
    const parentSpan = randomBytes(8).toString('hex');
    const res = await fetch(`${url}/v1/ingest/eeg`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${key}`,
        traceparent: `00-${traceId}-${parentSpan}-01`,
      },
      body: JSON.stringify(eeg.slice(0, 3)),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    const records = await readAll(fx.kafka, fx.topics.eeg);
    expect(records).toHaveLength(3);
    for (const r of records) {
      expect(r.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      expect(r.headers.traceparent).not.toContain(parentSpan);
    }

    gateway.child.kill('SIGTERM');
    const code = await gateway.exited;
    if (code !== 0) throw new Error(`gateway exited ${code}:\n${gateway.output().slice(-3000)}`);
  });
});
