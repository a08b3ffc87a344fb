/**
 * Background jobs (`vigil jobs`) and the alert webhooks they call (`vigil webhooks add|list|remove`).
 * Heavy modules (pg-boss, kafkajs, pg) load inside the actions, after telemetry has started.
 */
import type { Command } from 'commander';
import { boot, oneShot } from '../core/command-line';
import { started } from '../core/metrics';

export function register(program: Command): void {
  program
    .command('jobs')
    .description(
      'run the pg-boss jobs until SIGTERM: turns SessionEnded into a session-report job (report of the session from PostgreSQL into session_reports, retried while the projections catch up) and each alert event into an alert-webhook job (signed POST to every active webhook of the tenant, retried with exponential backoff on 5xx/408/429/network errors); runs the hourly retention job (plain PostgreSQL: telemetry older than 90 days, scores and alert events older than 365 days; nothing on TimescaleDB). A new trigger consumer group starts at the end of the topics; Prometheus metrics at GET /metrics on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT (0 = off; docs/metrics.md).',
    )
    .action(async () => {
      const rt = await boot('jobs');
      const { startJobsWorker } = await import('./worker');
      const worker = await startJobsWorker(rt);
      rt.lifecycle.onClose('jobs worker', () => worker.stop());
      started(rt);
    });

  const webhooks = program
    .command('webhooks')
    .description('alert webhooks per tenant: every alert event of the tenant is POSTed, signed, to each active one');
  webhooks
    .command('add')
    .description(
      'add a webhook; prints its id and secret (the secret only this once). Requests carry Vigil-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")> and Idempotency-Key: <event_id>',
    )
    .requiredOption('--tenant <id>', 'tenant whose alerts it receives')
    .requiredOption('--url <url>', 'http(s) URL to POST to')
    .option('--secret <secret>', 'signing secret (at least 16 characters; default: 32 random bytes, whsec_<hex>)')
    .action((o: { tenant: string; url: string; secret?: string }) =>
      oneShot('webhooks', async (rt) => {
        const { addWebhook } = await import('./webhooks/store');
        const w = await addWebhook(rt.pool, { tenantId: o.tenant, url: o.url, secret: o.secret });
        process.stdout.write(`${w.webhookId}\t${w.secret}\n`);
        rt.log.info({ webhook_id: w.webhookId, tenant: w.tenantId, url: w.url }, 'webhook added');
      }),
    );
  webhooks
    .command('list')
    .description('list webhooks (id, tenant, url, active or removed, created), without secrets')
    .option('--tenant <id>', 'only this tenant')
    .action((o: { tenant?: string }) =>
      oneShot('webhooks', async (rt) => {
        const { listWebhooks } = await import('./webhooks/store');
        for (const w of await listWebhooks(rt.pool, o.tenant)) {
          const state = w.active ? 'active' : 'removed';
          process.stdout.write(`${w.webhookId}\t${w.tenantId}\t${w.url}\t${state}\t${w.createdAt.toISOString()}\n`);
        }
      }),
    );
  webhooks
    .command('remove')
    .description(
      'stop calling a webhook (it is deactivated; its delivery history stays); exit 1 if no active one has that id',
    )
    .argument('<id>', 'webhook id, as add and list print it')
    .action((id: string) =>
      oneShot('webhooks', async (rt) => {
        const { removeWebhook } = await import('./webhooks/store');
        const removed = await removeWebhook(rt.pool, id);
        rt.log.info({ webhook_id: id }, removed ? 'webhook removed' : 'no active webhook with that id');
        if (!removed) process.exitCode = 1;
      }),
    );
}
