import type { Pool } from '../../core/db';
import { VigilError, messageOf } from '../../core/errors';
import { QUEUE } from '../../core/jobs';
import type { JobHandler } from '../../core/job-handler';
import { webhookPosted } from '../metrics';
import { SIGNATURE_HEADER, outcomeOf, signatureOf, type DeliveryOutcome } from './signature';

/**
 * Data of an `alert-webhook` job. `body` is the alert event as decoded from the alerts topic
 * (`{event_id, tenant_id, session_id, ts, event: {type, alert_id, ...}}`), serialised once when the job
 * is enqueued, so every attempt POSTs the same bytes.
 */
export interface AlertWebhookJobData {
  event_id: string;
  tenant_id: string;
  alert_id: string;
  type: string;
  body: string;
}

/**
 * `alert-webhook`: POSTs the alert event to every active webhook of its tenant, signed, with
 * `Idempotency-Key: <event_id>` (receivers drop repeats: delivery is at least once).
 * Per webhook, `webhook_deliveries` records attempts and the outcome (see `outcomeOf`): delivered
 * webhooks and permanently refused ones are skipped when the job runs again; if any webhook asked for
 * a retry (5xx, 408, 429, network error, timeout) the job throws WEBHOOK_UNDELIVERED and pg-boss
 * retries it with exponential backoff: 8 retries from 10 s doubling (the last about 21-43 min after
 * the one before, roughly 40-85 min in all). After the last attempt the remaining ones are marked
 * failed (`failed_at`, last error kept).
 */
export const alertWebhookJob: JobHandler<AlertWebhookJobData> = {
  queue: { name: QUEUE.alertWebhook, retryLimit: 8, retryDelay: 10, retryBackoff: true, expireInSeconds: 300 },
  async handle(job, deps) {
    const finalAttempt = job.retryCount >= job.retryLimit;
    const results = await deliverAlert(deps.pool, job.data, { timeoutMs: deps.options.webhookTimeoutMs, finalAttempt });
    const retry = results.filter((r) => r.outcome === 'retry');
    deps.log.info({ event_id: job.data.event_id, results }, 'alert webhooks attempted');
    if (retry.length && !finalAttempt) {
      throw new VigilError(
        'WEBHOOK_UNDELIVERED',
        `alert ${job.data.event_id}: ${retry.length} webhook(s) to retry: ${retry.map((r) => `#${r.webhook_id} ${r.error ?? r.status}`).join('; ')}`,
        { retriable: true, details: { event_id: job.data.event_id, webhooks: retry.map((r) => r.webhook_id) } },
      );
    }
    return { results };
  },
};

interface DeliveryResult {
  webhook_id: string;
  outcome: DeliveryOutcome | 'skipped';
  status: number | null;
  error?: string;
}

export async function deliverAlert(
  pool: Pool,
  alert: AlertWebhookJobData,
  opts: { timeoutMs: number; finalAttempt: boolean },
): Promise<DeliveryResult[]> {
  const { rows: hooks } = await pool.query<{
    webhook_id: string;
    url: string;
    secret: string;
    delivered_at: Date | null;
    failed_at: Date | null;
  }>(
    `SELECT w.webhook_id, w.url, w.secret, d.delivered_at, d.failed_at
     FROM tenant_webhooks w
     LEFT JOIN webhook_deliveries d ON d.webhook_id = w.webhook_id AND d.event_id = $2
     WHERE w.tenant_id = $1 AND w.active ORDER BY w.webhook_id`,
    [alert.tenant_id, alert.event_id],
  );
  return Promise.all(
    hooks.map(async (h): Promise<DeliveryResult> => {
      if (h.delivered_at || h.failed_at) return { webhook_id: h.webhook_id, outcome: 'skipped', status: null };
      const { status, error } = await post(h.url, h.secret, alert, opts.timeoutMs);
      const outcome = outcomeOf(status);
      const failed = outcome === 'permanent' || (outcome === 'retry' && opts.finalAttempt);
      webhookPosted(outcome === 'delivered' ? 'delivered' : failed ? 'failed' : 'retried');
      await pool.query(
        `INSERT INTO webhook_deliveries (event_id, webhook_id, tenant_id, alert_id, attempts, last_status, last_error,
           delivered_at, failed_at)
         VALUES ($1, $2, $3, $4, 1, $5, $6, CASE WHEN $7 THEN now() END, CASE WHEN $8 THEN now() END)
         ON CONFLICT (event_id, webhook_id) DO UPDATE SET
           attempts = webhook_deliveries.attempts + 1, last_status = EXCLUDED.last_status,
           last_error = EXCLUDED.last_error,
           delivered_at = COALESCE(webhook_deliveries.delivered_at, EXCLUDED.delivered_at),
           failed_at = COALESCE(webhook_deliveries.failed_at, EXCLUDED.failed_at), updated_at = now()`,
        [
          alert.event_id,
          h.webhook_id,
          alert.tenant_id,
          alert.alert_id,
          status,
          error ?? null,
          outcome === 'delivered',
          failed,
        ],
      );
      return { webhook_id: h.webhook_id, outcome, status, ...(error ? { error } : {}) };
    }),
  );
}

/** One signed POST; never throws: no answer is `status: null` with the reason. */
async function post(
  url: string,
  secret: string,
  alert: AlertWebhookJobData,
  timeoutMs: number,
): Promise<{ status: number | null; error?: string }> {
  // The signature's time is the attempt's wall-clock time: it dates the request, not the alert.
  const t = Math.floor(Date.now() / 1000);
  try {
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Vigil-Webhooks/1',
        'idempotency-key': alert.event_id,
        [SIGNATURE_HEADER]: signatureOf(secret, t, alert.body),
      },
      body: alert.body,
    });
    const text = await res.text().catch(() => '');
    if (res.status >= 200 && res.status < 300) return { status: res.status };
    return { status: res.status, error: `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}` };
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    return { status: null, error: `${messageOf(err)}${cause ? ` (${messageOf(cause)})` : ''}`.slice(0, 500) };
  }
}
