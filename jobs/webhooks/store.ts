import type { Pool } from '../../core/db';
import { VigilError } from '../../core/errors';
import { newWebhookSecret } from './signature';

/** `tenant_webhooks` (migration 0006): where a tenant's alert events are POSTed. */
interface Webhook {
  webhookId: string;
  tenantId: string;
  url: string;
  active: boolean;
  createdAt: Date;
}

/** Adds a webhook; returns it with its secret (generated unless given), which is not shown again. */
export async function addWebhook(
  pool: Pool,
  o: { tenantId: string; url: string; secret?: string },
): Promise<Webhook & { secret: string }> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new VigilError('REQUEST_INVALID', `not a URL: ${o.url}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new VigilError('REQUEST_INVALID', `webhook URLs use http or https, not ${url.protocol}`);
  if (!o.tenantId) throw new VigilError('REQUEST_INVALID', 'tenant must not be empty');
  const secret = o.secret ?? newWebhookSecret();
  if (secret.length < 16) throw new VigilError('REQUEST_INVALID', 'a webhook secret has at least 16 characters');
  const { rows } = await pool.query<{ webhook_id: string; created_at: Date }>(
    `INSERT INTO tenant_webhooks (tenant_id, url, secret) VALUES ($1, $2, $3) RETURNING webhook_id, created_at`,
    [o.tenantId, url.toString(), secret],
  );
  return {
    webhookId: rows[0]!.webhook_id,
    tenantId: o.tenantId,
    url: url.toString(),
    active: true,
    createdAt: rows[0]!.created_at,
    secret,
  };
}

/** Webhooks (without secrets), of one tenant or all, oldest first. */
export async function listWebhooks(pool: Pool, tenantId?: string): Promise<Webhook[]> {
  const { rows } = await pool.query<{
    webhook_id: string;
    tenant_id: string;
    url: string;
    active: boolean;
    created_at: Date;
  }>(
    `SELECT webhook_id, tenant_id, url, active, created_at FROM tenant_webhooks
     WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY webhook_id`,
    [tenantId ?? null],
  );
  return rows.map((r) => ({
    webhookId: r.webhook_id,
    tenantId: r.tenant_id,
    url: r.url,
    active: r.active,
    createdAt: r.created_at,
  }));
}

/** Deactivates a webhook (its delivery history stays); false when no active webhook has that id. */
export async function removeWebhook(pool: Pool, webhookId: string): Promise<boolean> {
  if (!/^\d+$/.test(webhookId)) throw new VigilError('REQUEST_INVALID', `webhook ids are numbers, not ${webhookId}`);
  const { rowCount } = await pool.query(`UPDATE tenant_webhooks SET active = false WHERE webhook_id = $1 AND active`, [
    webhookId,
  ]);
  return (rowCount ?? 0) > 0;
}
