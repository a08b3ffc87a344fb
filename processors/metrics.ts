import type { Counter, Histogram, ObservableGauge } from '@opentelemetry/api';
import { SECONDS_BUCKETS, vigilMeter } from '../core/metrics';

/**
 * The fatigue processor's instruments (docs/metrics.md; served at GET /metrics by core/metrics.ts).
 * Created once per process, on first use (after telemetry has installed the meter provider).
 */
export interface ProcessorInstruments {
  /** `{topic}`: the input's catalogue key (eeg, face, vehicle, game, sessions, commands). */
  recordsIn: Counter;
  /** `{topic}`: the output's catalogue key (scores, alerts). */
  recordsOut: Counter;
  late: Counter;
  /** Telemetry dropped as a copy of an event the session already held (a producer's resend). */
  duplicates: Counter;
  /** `{reason}`: the refusal's error code, lower case. */
  dlq: Counter;
  /** `{outcome}`: committed, fenced (another member took the partition over), reset (failed: restored). */
  transactions: Counter;
  changelogBytes: Counter;
  emitLatency: Histogram;
  restore: Histogram;
  rebalances: Counter;
  lag: ObservableGauge;
  sessions: ObservableGauge;
}

let instruments: ProcessorInstruments | undefined;

export function processorInstruments(): ProcessorInstruments {
  if (instruments) return instruments;
  const m = vigilMeter('vigil.processor');
  instruments = {
    recordsIn: m.createCounter('vigil_processor_records_in_total', { description: 'input records read' }),
    recordsOut: m.createCounter('vigil_processor_records_out_total', {
      description: 'records produced (scores, alerts)',
    }),
    late: m.createCounter('vigil_processor_late_total', { description: 'telemetry routed to the late topic' }),
    duplicates: m.createCounter('vigil_processor_duplicates_total', {
      description: 'telemetry dropped as a copy of an event already in the session reorder buffer (a producer resend)',
    }),
    dlq: m.createCounter('vigil_processor_dead_lettered_total', { description: 'input records dead-lettered' }),
    transactions: m.createCounter('vigil_processor_transactions_total', {
      description:
        'Kafka transactions by outcome (committed; fenced: another member took the partition over; reset: failed, the partition restored from its last commit)',
    }),
    changelogBytes: m.createCounter('vigil_processor_changelog_bytes_total', {
      description: 'session snapshot bytes committed to the changelog',
      unit: 'By',
    }),
    emitLatency: m.createHistogram('vigil_processor_emit_latency_seconds', {
      description: 'wall time at emit minus the append time of the input record that produced the output, seconds',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    }),
    restore: m.createHistogram('vigil_processor_restore_seconds', {
      description: 'partition state restore duration, seconds',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    }),
    rebalances: m.createCounter('vigil_processor_rebalances_total', { description: 'consumer group joins' }),
    lag: m.createObservableGauge('vigil_processor_lag_records', {
      description:
        'high watermark minus the next offset to fetch, summed over owned partitions, as of the last fetch (transaction markers counted)',
    }),
    sessions: m.createObservableGauge('vigil_processor_sessions', { description: 'sessions held in memory' }),
  };
  return instruments;
}
