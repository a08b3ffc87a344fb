import { hostname } from 'node:os';
import { NodeSDK, core as otelCore, resources } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  BatchSpanProcessor,
  NoopSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { type Context, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api';
import type { Config } from './config';
import { buildVersion, markMeterProviderInstalled, prometheusReader, vigilMeter } from './metrics';

/**
 * OpenTelemetry bootstrap, the one place spans are exported from. Must run before kafkajs, pg,
 * ioredis and express are first required so their instrumentations can patch them: main.ts starts
 * it first and loads the role's modules afterwards.
 *
 * Sampling: parent-based with `VIGIL_TRACE_SAMPLE_RATIO` (default 1) for new traces. A request or
 * record carrying a `traceparent` keeps the sampled flag it carries, so one event's trace is recorded
 * in every role or in none; an unsampled trace still propagates its ids (headers, logs, Kafka).
 * Kafka: no span per produced or consumed message (kafkajs's instrumentation is off). Vigil makes
 * one span per publish call (producers/publisher.ts), per consumed batch with links to the batch's
 * other traces (core/trace-batch.ts), and per record that caused outputs in the processor.
 * HTTP: the API's and the gateway's server spans are Vigil's own (core/http/request-context.ts); the
 * HTTP instrumentation traces outgoing requests only.
 *
 * Exporter: OTLP/protobuf when OTEL_EXPORTER_OTLP_ENDPOINT is set, else Zipkin when VIGIL_ZIPKIN_URL
 * is set, else none (context still propagates, so `traceparent` headers keep flowing).
 * Metrics (core/metrics.ts `vigilMeter()`): always the in-process Prometheus reader (served at
 * GET /metrics on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT by every role, and on the API's own port), and
 * OTLP every 10 s when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * W3C trace context and baggage, except that a carrier which already holds a `traceparent` keeps it.
 * Vigil code sets `traceparent` on Kafka records on purpose (core/kafka.ts `traceHeaders`, the
 * processor's span per emitting record); kafkajs's instrumentation injects its own `send` span into
 * every produced record afterwards, and inside a transaction that span belongs to a separate
 * `transaction` trace, which would cut device → processor → projection into unrelated traces.
 * Carriers without one (outgoing HTTP, plain producers) are injected as usual.
 */
class ExplicitTraceparentWins implements TextMapPropagator {
  constructor(
    private readonly inner: TextMapPropagator = new otelCore.CompositePropagator({
      propagators: [new otelCore.W3CTraceContextPropagator(), new otelCore.W3CBaggagePropagator()],
    }),
  ) {}

  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const existing = (carrier as Record<string, unknown> | null | undefined)?.traceparent;
    if (existing !== undefined && existing !== null && String(existing) !== '') return;
    this.inner.inject(context, carrier, setter);
  }

  extract(context: Context, carrier: unknown, getter: Parameters<TextMapPropagator['extract']>[2]): Context {
    return this.inner.extract(context, carrier, getter);
  }

  fields(): string[] {
    return this.inner.fields();
  }
}

export function startTelemetry(cfg: Config['telemetry'], serviceName: string): Telemetry {
  if (!cfg.enabled) {
    vigilMeter(); // the meter provider with the in-process reader (core/metrics.ts)
    return { shutdown: async () => {} };
  }
  let exporter: SpanExporter | undefined;
  if (cfg.otlpEndpoint) exporter = new OTLPTraceExporter({ url: new URL('/v1/traces', cfg.otlpEndpoint).toString() });
  else if (cfg.zipkinUrl) exporter = new ZipkinExporter({ url: cfg.zipkinUrl, serviceName });
  // Always the in-process reader: every role serves it at GET /metrics (core/metrics-server.ts).
  const metricReaders: IMetricReader[] = [prometheusReader()];
  if (cfg.otlpEndpoint) {
    metricReaders.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: new URL('/v1/metrics', cfg.otlpEndpoint).toString() }),
        exportIntervalMillis: 10_000,
      }),
    );
  }
  const sdk = new NodeSDK({
    serviceName,
    // A small resource: service.name, service.version, host.name, process.pid, and what
    // OTEL_RESOURCE_ATTRIBUTES adds. Zipkin has no resource of its own and copies every resource
    // attribute into every span's tags; the SDK's default detectors (process, host) came to 16 tags,
    // about 600 of a Redis span's 1,070 JSON bytes.
    resource: resources.resourceFromAttributes({
      'service.version': buildVersion(),
      'host.name': hostname(),
      'process.pid': process.pid,
    }),
    resourceDetectors: [resources.envDetector],
    textMapPropagator: new ExplicitTraceparentWins(),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sampleRatio) }),
    metricReaders,
    // No log export: logs go to stdout as JSON (with trace ids). Without this the SDK defaults to an
    // OTLP log exporter and waits ~10 s at shutdown to flush it to a collector that may not exist.
    logRecordProcessors: [],
    // Explicit processors: without them the SDK falls back to an OTLP exporter on localhost:4318.
    // With no exporter, spans are still created so trace context reaches headers and logs.
    spanProcessors: [exporter ? new BatchSpanProcessor(exporter) : new NoopSpanProcessor()],
    // Only the libraries Vigil's requests and records go through, named one by one. The auto list
    // (getNodeAutoInstrumentations) enables 39, each hooking `require`, and its runtime-node
    // instrumentation samples the event loop and watches every GC. Left out on purpose:
    // - kafkajs: one span per message (~100 per gateway request of 100 events) halved the gateway's
    //   throughput (bench/README.md, gateway); Vigil makes its own spans per call and per batch;
    // - express and router: a span per middleware layer (13 per API request) and per route handler,
    //   about a fifth of a traced cached read's CPU (bench/results/api-cached-profile.md);
    //   core/http/request-context.ts names the server span by its route, which was the useful part;
    // - fs, dns, net: noise.
    instrumentations: [
      // Outgoing requests only (the registry client; the exporters' own are suppressed). Its incoming
      // side cost a cached API read more CPU than the read itself, sampled or not;
      // core/http/request-context.ts makes the server spans of the API and the gateway instead.
      new HttpInstrumentation({ disableIncomingRequestInstrumentation: true }),
      // fetch: webhook deliveries (jobs/webhooks/deliver.ts) and the registry's config lookups.
      new UndiciInstrumentation(),
      // Database and cache calls matter inside a request or a record's processing; without a parent
      // (pg-boss polling, pool housekeeping) they would each start a trace of their own.
      new PgInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  markMeterProviderInstalled();
  return { shutdown: () => sdk.shutdown() };
}
