import type { Counter, Histogram } from '@opentelemetry/api';
import { SECONDS_BUCKETS, vigilMeter } from './metrics';

/**
 * The consume loop's instruments (core/reactor.ts: every projection runner and the jobs trigger), labelled
 * by `projection`: the read model's name (`eeg`, `scores`, `redis`, …) or the consumer's (`jobs.trigger`).
 * See docs/metrics.md.
 */
interface Instruments {
  applied: Counter;
  deadLettered: Counter;
  batches: Counter;
  freshness: Histogram;
}

let instruments: Instruments | undefined;
/** Live consumers' lag per topic-partition (`topic/partition`), read by the lag gauge at each collection. */
const lags = new Map<ProjectionMetrics, Map<string, number>>();

function get(): Instruments {
  if (instruments) return instruments;
  const m = vigilMeter('vigil.projection');
  m.createObservableGauge('vigil_projection_lag_records', {
    description:
      "high watermark minus the next offset to apply, summed over the consumer's partitions, as of its last fetch",
  }).addCallback((r) => {
    const sums = new Map<string, number>();
    for (const [pm, byPartition] of lags) {
      let n = sums.get(pm.projection) ?? 0;
      for (const lag of byPartition.values()) n += lag;
      sums.set(pm.projection, n);
    }
    for (const [projection, n] of sums) r.observe(n, { projection });
  });
  instruments = {
    applied: m.createCounter('vigil_projection_records_applied_total', {
      description: 'records applied (redeliveries below the checkpoint and dead-lettered records not counted)',
    }),
    deadLettered: m.createCounter('vigil_projection_dead_lettered_total', {
      description: 'records dead-lettered, by error code',
    }),
    batches: m.createCounter('vigil_projection_batches_total', {
      description: 'batches: applied, skipped (all below the checkpoint) or retried (failed, fetched again)',
    }),
    freshness: m.createHistogram('vigil_projection_freshness_seconds', {
      description: 'record timestamp (append time) to its batch applied and checkpointed, seconds',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    }),
  };
  return instruments;
}

/** One consumer's measures. `consumer`: the reactor's name (`projection.eeg`, `jobs.trigger`). */
export class ProjectionMetrics {
  readonly projection: string;
  private readonly i = get();

  constructor(consumer: string) {
    this.projection = consumer.replace(/^projection\./, '');
  }

  /** Records applied and checkpointed; `timestamps`: their Kafka timestamps (ms since the epoch, as strings). */
  applied(timestamps: readonly string[], now = Date.now()): void {
    if (timestamps.length === 0) return;
    this.i.applied.add(timestamps.length, { projection: this.projection });
    for (const ts of timestamps) {
      const t = Number(ts);
      if (Number.isFinite(t) && t > 0)
        this.i.freshness.record(Math.max(0, now - t) / 1000, { projection: this.projection });
    }
  }

  batch(outcome: 'applied' | 'skipped' | 'retried'): void {
    this.i.batches.add(1, { projection: this.projection, outcome });
  }

  deadLettered(reasons: readonly string[]): void {
    for (const reason of reasons) this.i.deadLettered.add(1, { projection: this.projection, reason });
  }

  /** The partition's lag as kafkajs reports it for a fetched batch. */
  lag(topic: string, partition: number, records: number): void {
    let byPartition = lags.get(this);
    if (!byPartition) lags.set(this, (byPartition = new Map()));
    byPartition.set(`${topic}/${partition}`, Math.max(0, records));
  }

  /** After a rebalance: partitions no longer assigned leave the gauge. */
  assigned(assignment: Record<string, number[]>): void {
    const byPartition = lags.get(this);
    if (!byPartition) return;
    for (const tp of [...byPartition.keys()]) {
      const at = tp.lastIndexOf('/');
      if (!assignment[tp.slice(0, at)]?.includes(Number(tp.slice(at + 1)))) byPartition.delete(tp);
    }
  }

  /**
   * The consumer stopped: its partitions are no longer summed (with cumulative temporality the SDK keeps
   * exporting a series' last value once observed, so the gauge keeps the last sum; the process ends next).
   */
  close(): void {
    lags.delete(this);
  }
}
