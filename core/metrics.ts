import { readFileSync } from 'node:fs';
import path from 'node:path';
import { metrics, type Meter } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { repoRoot } from './paths';

/**
 * The process's metrics registry: one in-process Prometheus reader (no server of its own) on the global
 * meter provider, whose text every role serves at `GET /metrics` (core/metrics-server.ts; the API also on
 * its own port). docs/metrics.md lists every name; core/metrics.unit.spec.ts keeps the two in step.
 *
 * With tracing on, core/telemetry.ts passes `prometheusReader()` to the NodeSDK (which installs the
 * provider); otherwise the first `vigilMeter()` installs a plain MeterProvider with it. Instruments must
 * be created after that (a meter taken before any provider is a no-op for good): create them lazily,
 * through `vigilMeter()`.
 *
 * Counter names are written with their `_total` (the exporter appends one only when it is missing).
 */
let reader: PrometheusExporter | undefined;
let providerInstalled = false;

/** The in-process reader (created once). `withoutScopeInfo`: no `otel_scope_*` label on every series. */
export function prometheusReader(): PrometheusExporter {
  reader ??= new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  return reader;
}

/** core/telemetry.ts: the NodeSDK has installed a provider holding `prometheusReader()`. */
export function markMeterProviderInstalled(): void {
  providerInstalled = true;
}

/** The meter Vigil's instruments come from; installs the provider with the reader if none is yet. */
export function vigilMeter(scope = 'vigil'): Meter {
  if (!providerInstalled) {
    providerInstalled = true;
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheusReader()] }));
    registerProcessMetrics();
  }
  return metrics.getMeter(scope);
}

/** `GET /metrics` as a Node handler: Prometheus text of every instrument of the process. */
export function metricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
  vigilMeter();
  const r = prometheusReader();
  return (req, res) => r.getMetricsRequestHandler(req, res);
}

/** The Prometheus text now (tests, and the metrics server). */
export async function metricsText(): Promise<string> {
  vigilMeter();
  const { resourceMetrics } = await prometheusReader().collect();
  // The serializer the exporter's handler uses, with the same options.
  return new PrometheusSerializer('', false, undefined, false, true).serialize(resourceMetrics);
}

let processMetrics = false;
/**
 * `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_start_time_seconds`,
 * `nodejs_heap_used_bytes`: the usual Prometheus process names, from `process` itself (no package: the
 * OpenTelemetry host-metrics package names them `process_cpu_time_seconds_total{state}` and
 * `process_memory_usage_bytes`, which no stock dashboard knows).
 */
export function registerProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  const m = metrics.getMeter('vigil.process');
  const started = (Date.now() - process.uptime() * 1000) / 1000;
  m.createObservableCounter('process_cpu_seconds_total', {
    description: 'user and system CPU time spent, seconds',
    unit: 's',
  }).addCallback((r) => {
    const u = process.cpuUsage();
    r.observe((u.user + u.system) / 1e6);
  });
  m.createObservableGauge('process_resident_memory_bytes', {
    description: 'resident set size, bytes',
    unit: 'By',
  }).addCallback((r) => r.observe(process.memoryUsage.rss()));
  m.createObservableGauge('process_start_time_seconds', {
    description: 'start time of the process since the Unix epoch, seconds',
    unit: 's',
  }).addCallback((r) => r.observe(started));
  m.createObservableGauge('nodejs_heap_used_bytes', {
    description: 'V8 heap in use, bytes',
    unit: 'By',
  }).addCallback((r) => r.observe(process.memoryUsage().heapUsed));
}

let version: string | undefined;
/** The package version of this build (`unknown` when package.json cannot be read). */
export function buildVersion(): string {
  if (version === undefined) {
    try {
      version = String(
        (JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version?: unknown }).version ??
          'unknown',
      );
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

const ready = new Map<string, () => boolean>();
let roleMetrics = false;
/**
 * `vigil_ready{role}` and `vigil_build_info{role,version}` for a role. `isReady` answers the role's
 * readiness (default: `setReady` below, false until the role calls it).
 */
export function registerRole(role: string, isReady?: () => boolean): void {
  ready.set(role, isReady ?? (() => readyFlags.get(role) ?? false));
  const m = vigilMeter();
  registerProcessMetrics();
  if (roleMetrics) return;
  roleMetrics = true;
  m.createObservableGauge('vigil_ready', {
    description: '1 while the role is started and its consumers or servers run, 0 before and while stopping',
  }).addCallback((r) => {
    for (const [name, f] of ready) r.observe(f() ? 1 : 0, { role: name });
  });
  m.createObservableGauge('vigil_build_info', { description: 'the running version (always 1)' }).addCallback((r) => {
    for (const name of ready.keys()) r.observe(1, { role: name, version: buildVersion() });
  });
}

const readyFlags = new Map<string, boolean>();
/** The role is up (after its start-up finished) or going down (at the start of shutdown). */
export function setReady(role: string, up: boolean): void {
  readyFlags.set(role, up);
}

/**
 * A long-running role has started: `vigil_ready{role}` is 1 until shutdown begins (the closer registered
 * here, last, runs first: before the role's consumers and servers stop).
 */
export function started(rt: { role: string; lifecycle: { onClose(name: string, close: () => unknown): void } }): void {
  setReady(rt.role, true);
  rt.lifecycle.onClose('ready gauge', () => setReady(rt.role, false));
}

/** Latency buckets in seconds, for request and pipeline latencies (1 ms … 60 s). */
export const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
