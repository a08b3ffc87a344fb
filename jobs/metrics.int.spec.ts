import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '../test/support/env';
import { jobsWorkerDeps } from '../test/support/jobs';
import { migratedDatabase, type MigratedDatabase } from '../test/support/database';
import { buildAlert } from '../test/support/build';
import { metricsText } from '../core/metrics';
import { sample } from '../test/support/metrics';
import { enqueue, jobIdOf, QUEUE } from '../core/jobs';
import { jobRequestsOf } from './requests';
import { startJobsWorker, type JobsWorker } from './worker';
import { alertWebhookJob } from './webhooks/deliver';
import { addWebhook } from './webhooks/store';

/** A local receiver answering the given statuses in turn (the last one from then on). */
async function receiver(statuses: number[]) {
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(statuses[Math.min(n++, statuses.length - 1)]!).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * The jobs worker's metrics (docs/metrics.md) after an alert webhook job through pg-boss against local
 * receivers: one webhook answers 500 then 200 (retried, then delivered), one 400 (failed for good); the
 * job fails once (retried) and then completes.
 */
describe('jobs metrics (pg-boss → HTTP)', () => {
  let db: MigratedDatabase;
  let worker: JobsWorker;
  const receivers = Promise.all([receiver([500, 200]), receiver([400])]);

  beforeAll(async () => {
    db = await migratedDatabase();
    worker = await startJobsWorker(jobsWorkerDeps(db), {
      handlers: [alertWebhookJob],
      trigger: false,
      pollingIntervalSeconds: 0.5,
      queueOverrides: { [QUEUE.alertWebhook]: { retryLimit: 3, retryDelay: 1, retryBackoff: false } },
      jobOptions: { webhookTimeoutMs: 2_000 },
    });
  });
  afterAll(async () => {
    await worker?.stop();
    await db?.close();
    for (const r of await receivers) await r.close();
  });

  it('counts webhook outcomes and job completions, and serves the queue depth', async () => {
    const [flaky, refusing] = await receivers;
    await addWebhook(db.pool, { tenantId: 'acme', url: flaky.url });
    await addWebhook(db.pool, { tenantId: 'acme', url: refusing.url });
    const event = buildAlert('AlertRaised', { tenant_id: 'acme', alert_id: 'alert-m' });
    await enqueue(worker.boss, jobRequestsOf('alerts', event));
    const jobId = jobIdOf(QUEUE.alertWebhook, event.event_id);
    const job = await eventually(
      () => worker.boss.getJobById(QUEUE.alertWebhook, jobId, { includeArchive: true }),
      (j) => j?.state === 'completed' || j?.state === 'failed',
    );
    expect(job?.state).toBe('completed');

    const text = await metricsText();
    const queue = QUEUE.alertWebhook;
    expect(sample(text, 'vigil_webhook_deliveries_total', { outcome: 'retried' })).toBe(1);
    expect(sample(text, 'vigil_webhook_deliveries_total', { outcome: 'delivered' })).toBe(1);
    expect(sample(text, 'vigil_webhook_deliveries_total', { outcome: 'failed' })).toBe(1);
    expect(sample(text, 'vigil_jobs_completed_total', { queue, outcome: 'retried' })).toBe(1);
    expect(sample(text, 'vigil_jobs_completed_total', { queue, outcome: 'completed' })).toBe(1);
    expect(sample(text, 'vigil_jobs_completed_total', { queue, outcome: 'failed' })).toBeUndefined();
    // Polled at start (nothing waiting then).
    expect(sample(text, 'vigil_jobs_queue_depth', { queue })).toBe(0);
  });
});
