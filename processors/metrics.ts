import { metrics } from '@opentelemetry/api';

/**
 * The processor runner's OpenTelemetry instruments (exported by core/telemetry.ts as Prometheus text
 * on VIGIL_METRICS_PORT and/or OTLP). Names follow Prometheus conventions.
 */
export function processorInstruments() {
  const m = metrics.getMeter('vigil.processor');
  return {
    recordsIn: m.createCounter('vigil_processor_records_in', { description: 'records consumed' }),
    recordsOut: m.createCounter('vigil_processor_records_out', { description: 'events produced (scores, alerts)' }),
    late: m.createCounter('vigil_processor_late', { description: 'records routed to the late topic' }),
    dlq: m.createCounter('vigil_processor_dead_lettered', { description: 'records routed to the DLQ' }),
    emitLatency: m.createHistogram('vigil_processor_emit_latency_ms', {
      description: 'wall time of emit minus the output event time',
      unit: 'ms',
    }),
    restore: m.createHistogram('vigil_processor_restore_ms', { description: 'state restore duration', unit: 'ms' }),
    rebalances: m.createCounter('vigil_processor_rebalances', { description: 'group joins' }),
    lag: m.createObservableGauge('vigil_processor_lag', {
      description: 'records behind the high watermark per topic-partition (transaction markers counted)',
    }),
    sessions: m.createObservableGauge('vigil_processor_sessions', { description: 'sessions held in memory' }),
  };
}
