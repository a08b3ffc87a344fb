import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pool } from 'pg';
import { eventually } from '../../test/support/env';
import { jobsWorkerDeps } from '../../test/support/jobs';
import { migratedDatabase, type MigratedDatabase } from '../../test/support/database';
import { buildAlert } from '../../test/support/build';
import { enqueue, jobIdOf, QUEUE } from '../../core/jobs';
import { jobRequestsOf } from '../requests';
import { startJobsWorker, type JobsWorker } from '../worker';
import { alertWebhookJob, deliverAlert } from './deliver';
import { addWebhook } from './store';
import { verifySignature } from './signature';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A local receiver answering the given statuses in turn (the last one from then on). */
async function receiver(statuses: number[]) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)]!;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 400 ? 'bad' : 'ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * Alert webhooks through pg-boss against local receivers: retried with backoff on 5xx until
 * delivered once, a 400 never retried, signed with the webhook's secret, Idempotency-Key = event id.
 */
describe('alert webhooks (pg-boss → HTTP)', () => {
  let db: MigratedDatabase;
  let pool: Pool;
  let worker: JobsWorker;
  const flaky = receiver([500, 500, 200]);
  const refusing = receiver([400]);
  const otherTenant = receiver([200]);

  const event = buildAlert('AlertRaised', { tenant_id: 'acme', alert_id: 'alert-1' });

  beforeAll(async () => {
    db = await migratedDatabase();
    pool = db.pool;
    worker = await startJobsWorker(jobsWorkerDeps(db), {
      handlers: [alertWebhookJob],
      trigger: false,
      pollingIntervalSeconds: 0.5,
      // Small delays: retries after 1-2 s, then 2-4 s, ...
      queueOverrides: { [QUEUE.alertWebhook]: { retryLimit: 4, retryDelay: 1, retryBackoff: true } },
      jobOptions: { webhookTimeoutMs: 2_000 },
    });
  });

  afterAll(async () => {
    await worker?.stop();
    await db?.close();
    for (const r of [flaky, refusing, otherTenant]) await (await r).close();
  });

  it('retries 5xx with backoff until delivered once, never retries a 400, signs each request', async () => {
    const [ok, bad, other] = await Promise.all([flaky, refusing, otherTenant]);
    const hookOk = await addWebhook(pool, { tenantId: 'acme', url: ok.url });
    const hookBad = await addWebhook(pool, { tenantId: 'acme', url: bad.url, secret: 'a-given-secret-of-16+' });
    await addWebhook(pool, { tenantId: 'other', url: other.url });

    await enqueue(worker.boss, jobRequestsOf('alerts', event));
    const jobId = jobIdOf(QUEUE.alertWebhook, event.event_id);
    const job = await eventually(
      () => worker.boss.getJobById(QUEUE.alertWebhook, jobId, { includeArchive: true }),
      (j) => j?.state === 'completed' || j?.state === 'failed',
      40_000,
    );
    expect(job?.state).toBe('completed');
    expect(job?.retryCount).toBe(2);

    expect(ok.received).toHaveLength(3);
    expect(bad.received).toHaveLength(1);
    expect(other.received).toHaveLength(0);
    const body = JSON.stringify(event);
    for (const r of ok.received) {
      expect(r.body).toBe(body);
      expect(r.headers['idempotency-key']).toBe(event.event_id);
      expect(r.headers['content-type']).toBe('application/json');
      expect(verifySignature(hookOk.secret, String(r.headers['vigil-signature']), r.body)).toBe(true);
      expect(verifySignature(hookBad.secret, String(r.headers['vigil-signature']), r.body)).toBe(false);
    }
    expect(verifySignature('a-given-secret-of-16+', String(bad.received[0]!.headers['vigil-signature']), body)).toBe(
      true,
    );

    const { rows } = await pool.query(
      `SELECT webhook_id, event_id, tenant_id, alert_id, attempts, last_status, last_error,
              delivered_at IS NOT NULL AS delivered, failed_at IS NOT NULL AS failed
       FROM webhook_deliveries ORDER BY webhook_id`,
    );
    expect(rows).toEqual([
      {
        webhook_id: hookOk.webhookId,
        event_id: event.event_id,
        tenant_id: 'acme',
        alert_id: 'alert-1',
        attempts: 3,
        last_status: 200,
        last_error: null,
        delivered: true,
        failed: false,
      },
      {
        webhook_id: hookBad.webhookId,
        event_id: event.event_id,
        tenant_id: 'acme',
        alert_id: 'alert-1',
        attempts: 1,
        last_status: 400,
        last_error: 'HTTP 400: bad',
        delivered: false,
        failed: true,
      },
    ]);

    // The same event again: the job id exists, so no second job; and a later run skips both webhooks.
    await enqueue(worker.boss, jobRequestsOf('alerts', event));
    const { rows: jobs } = await pool.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1`, [
      QUEUE.alertWebhook,
    ]);
    expect(jobs[0].n).toBe(1);
    const again = await deliverAlert(pool, jobRequestsOf('alerts', event)[0]!.data as never, {
      timeoutMs: 2_000,
      finalAttempt: false,
    });
    expect(again.map((r) => r.outcome)).toEqual(['skipped', 'skipped']);
    expect(ok.received).toHaveLength(3);
    expect(bad.received).toHaveLength(1);
  });

  it('a receiver that never answers in time is retried, then marked failed after the last attempt', async () => {
    const silent = http.createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
      const hook = await addWebhook(pool, { tenantId: 'slow', url });
      const data = jobRequestsOf('alerts', { ...event, tenant_id: 'slow' })[0]!.data as never;
      const first = await deliverAlert(pool, data, { timeoutMs: 300, finalAttempt: false });
      expect(first).toEqual([
        {
          webhook_id: hook.webhookId,
          outcome: 'retry',
          status: null,
          error: expect.stringMatching(/aborted|timeout/i),
        },
      ]);
      const last = await deliverAlert(pool, data, { timeoutMs: 300, finalAttempt: true });
      expect(last.map((r) => r.outcome)).toEqual(['retry']);
      const { rows } = await pool.query(
        `SELECT attempts, last_status, delivered_at, failed_at IS NOT NULL AS failed FROM webhook_deliveries WHERE webhook_id = $1`,
        [hook.webhookId],
      );
      expect(rows).toEqual([{ attempts: 2, last_status: null, delivered_at: null, failed: true }]);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
