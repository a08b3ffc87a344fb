import type { Counter } from '@opentelemetry/api';
import { vigilMeter } from '../core/metrics';

/**
 * The jobs worker's instruments (docs/metrics.md): `vigil_jobs_queue_depth{queue}` (from the poll the
 * worker runs, jobs/worker.ts), `vigil_jobs_completed_total{queue,outcome}` and
 * `vigil_webhook_deliveries_total{outcome}`.
 */
interface Instruments {
  completed: Counter;
  webhooks: Counter;
}
let instruments: Instruments | undefined;
/** Last polled depth per queue (created or retry); a queue whose poll failed keeps its last value. */
export const queueDepths = new Map<string, number>();

function get(): Instruments {
  if (instruments) return instruments;
  const m = vigilMeter('vigil.jobs');
  m.createObservableGauge('vigil_jobs_queue_depth', {
    description: 'jobs waiting to run (state created or retry), as of the last poll (every 10 s)',
  }).addCallback((r) => {
    for (const [queue, depth] of queueDepths) r.observe(depth, { queue });
  });
  instruments = {
    completed: m.createCounter('vigil_jobs_completed_total', {
      description: 'job runs finished: completed, retried (failed, pg-boss runs it again) or failed for good',
    }),
    webhooks: m.createCounter('vigil_webhook_deliveries_total', {
      description: 'alert webhook POSTs: delivered, retried (to be sent again) or failed for good',
    }),
  };
  return instruments;
}

/** Creates the instruments now, so every series exists (at 0 once counted) from the start. */
export function jobsInstruments(): Instruments {
  return get();
}

export function jobFinished(queue: string, outcome: 'completed' | 'retried' | 'failed'): void {
  get().completed.add(1, { queue, outcome });
}

export function webhookPosted(outcome: 'delivered' | 'retried' | 'failed'): void {
  get().webhooks.add(1, { outcome });
}
