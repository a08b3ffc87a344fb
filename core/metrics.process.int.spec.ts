import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { eventually, freePort, processEnv, testConfig } from '../test/support/env';
import { pipelineFixture, type PipelineFixture } from '../test/support/pipeline';
import { sample, scrape, types } from '../test/support/metrics';
import { sessionEvents } from '../producers/simulator/session';
import type { TopicKey, ValueOf } from '../schemas/catalogue';

/**
 * Every long-running role as a `vigil` process (the build: dist/main.js, or VIGIL_TEST_MAIN) serves
 * GET /metrics on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT (docs/metrics.md): `vigil_ready` 1 once started,
 * `vigil_build_info`, process metrics, and its own instruments, with tracing on (the NodeSDK's meter
 * provider) and off (core/metrics.ts's own). The processor and the projection worker count what was
 * published. VIGIL_TEST_SCRAPES=<dir> writes each role's scrape there.
 */
const MAIN = process.env.VIGIL_TEST_MAIN ?? path.join(__dirname, '..', 'dist', 'main.js');
const config = testConfig();
const ROLES = ['process', 'project', 'api', 'jobs', 'gateway'] as const;
type Role = (typeof ROLES)[number];
/** Tracing on for two roles (metrics through the NodeSDK), off for the others. */
const TRACED: readonly Role[] = ['process', 'api'];

/** Near now: the processor dead-letters a ts more than 24 h behind the broker's append time. */
const plan = {
  seed: 12,
  index: 0,
  tenantId: 'fleet-p',
  startTs: Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000,
  durationMs: 20_000,
};
const events = [...sessionEvents({ ...plan, profile: 'drowsy' })];

describe('GET /metrics of every long-running role (processes)', () => {
  let fx: PipelineFixture;
  const children: { role: Role; kill: () => void; output: () => string; url: string; http: string }[] = [];

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    const byTopic = new Map<TopicKey, unknown[]>();
    for (const e of events) (byTopic.get(e.topic) ?? byTopic.set(e.topic, []).get(e.topic)!).push(e.event);
    for (const [topic, values] of byTopic) await fx.publisher.publish(topic, values as ValueOf<typeof topic>[]);
    for (const role of ROLES) {
      const port = await freePort();
      const httpPort = await freePort();
      const env = processEnv(config, {
        VIGIL_DATABASE_URL: fx.databaseUrl,
        VIGIL_METRICS_HOST: '127.0.0.1',
        VIGIL_METRICS_PORT: String(port),
        VIGIL_API_PORT: String(httpPort),
        VIGIL_GATEWAY_PORT: String(httpPort),
        VIGIL_TRACING: TRACED.includes(role) ? 'on' : 'off',
        VIGIL_ZIPKIN_URL: '',
        OTEL_EXPORTER_OTLP_ENDPOINT: '',
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_LOGS_EXPORTER: 'none',
      });
      const child = spawn(process.execPath, [MAIN, role], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      children.push({
        role,
        kill: () => child.kill('SIGKILL'),
        output: () => out,
        url: `http://127.0.0.1:${port}/metrics`,
        http: `http://127.0.0.1:${httpPort}`,
      });
    }
  });
  afterAll(async () => {
    for (const c of children) c.kill();
    await fx?.close();
  });

  const scrapeOf = (role: Role) => {
    const c = children.find((x) => x.role === role)!;
    return () => scrape(c.url).catch(() => '');
  };
  const ready = (role: Role) => (t: string) => sample(t, 'vigil_ready', { role }) === 1;

  it.each(ROLES)('%s: vigil_ready 1, vigil_build_info, process metrics', async (role) => {
    const text = await eventually(scrapeOf(role), ready(role), 60_000);
    if (!ready(role)(text)) throw new Error(`${role} not ready:\n${children.find((c) => c.role === role)!.output()}`);
    const { version } = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(sample(text, 'vigil_build_info', { role, version })).toBe(1);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    const t = types(text);
    expect(t.get('process_cpu_seconds_total')).toBe('counter');
    expect(t.get('vigil_ready')).toBe('gauge');
    // Nothing doubled by the exporter's counter suffix.
    expect([...t.keys()].filter((n) => n.endsWith('_total_total'))).toEqual([]);
  });

  it('the processor counts every input record, the projection worker every eeg frame, lag 0', async () => {
    const inputs = events.filter((e) => ['sessions', 'eeg', 'face', 'vehicle', 'game'].includes(e.topic)).length;
    const eeg = events.filter((e) => e.topic === 'eeg').length;
    const proc = await eventually(
      scrapeOf('process'),
      (t) =>
        sample(t, 'vigil_processor_records_in_total') === inputs &&
        (sample(t, 'vigil_processor_changelog_bytes_total') ?? 0) > 0,
      60_000,
    );
    const dir = process.env.VIGIL_TEST_SCRAPES;
    if (dir) writeFileSync(path.join(dir, 'process.txt'), proc);
    expect(sample(proc, 'vigil_processor_records_in_total')).toBe(inputs);
    expect(sample(proc, 'vigil_processor_records_in_total', { topic: 'eeg' })).toBe(eeg);
    expect(sample(proc, 'vigil_processor_transactions_total', { outcome: 'committed' })).toBeGreaterThan(0);
    expect(sample(proc, 'vigil_processor_changelog_bytes_total')).toBeGreaterThan(0);
    const proj = await eventually(
      scrapeOf('project'),
      (t) =>
        sample(t, 'vigil_projection_records_applied_total', { projection: 'eeg' }) === eeg &&
        sample(t, 'vigil_projection_lag_records', { projection: 'eeg' }) === 0,
      60_000,
    );
    expect(sample(proj, 'vigil_projection_records_applied_total', { projection: 'eeg' })).toBe(eeg);
    expect(sample(proj, 'vigil_projection_lag_records', { projection: 'eeg' })).toBe(0);
    // The API and the gateway count what they answered.
    const base = (role: Role) => children.find((c) => c.role === role)!.http;
    expect((await fetch(`${base('api')}/health/live`)).status).toBe(200);
    expect((await fetch(`${base('gateway')}/v1/ingest/eeg`, { method: 'POST', body: '[]' })).status).toBe(401);
    const api = await scrapeOf('api')();
    expect(sample(api, 'vigil_api_requests_total', { route: '/health/live', status: '200' })).toBe(1);
    const gw = await scrapeOf('gateway')();
    expect(sample(gw, 'vigil_gateway_requests_total', { stream: 'eeg', reason: 'unauthenticated' })).toBe(1);
    const jobs = await eventually(scrapeOf('jobs'), (t) => sample(t, 'vigil_jobs_queue_depth') !== undefined, 30_000);
    expect(sample(jobs, 'vigil_jobs_queue_depth')).toBeGreaterThanOrEqual(0);
    if (dir) for (const role of ROLES) writeFileSync(path.join(dir, `${role}.txt`), await scrapeOf(role)());
  });
});
