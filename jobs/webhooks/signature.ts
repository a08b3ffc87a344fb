import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * How alert webhooks are signed (pure). A receiver recomputes HMAC-SHA256 with the webhook's secret
 * over `<t>.<raw body>` and compares it with `v1`; `t` (unix seconds of the attempt) lets it refuse
 * old replays. Header: `Vigil-Signature: t=<unix seconds>,v1=<hex>`.
 */
export const SIGNATURE_HEADER = 'Vigil-Signature';

export function signatureOf(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a receiver does: true when `header` signs `body` with `secret` (and is at most `toleranceS` old). */
export function verifySignature(
  secret: string,
  header: string,
  body: string,
  opts: { nowSeconds?: number; toleranceS?: number } = {},
): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || typeof parts.v1 !== 'string') return false;
  if (opts.nowSeconds !== undefined && Math.abs(opts.nowSeconds - t) > (opts.toleranceS ?? 300)) return false;
  const expected = Buffer.from(signatureOf(secret, t, body).split('v1=')[1]!, 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A new webhook secret: 32 random bytes, hex, with a prefix that says what it is. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('hex')}`;

export type DeliveryOutcome = 'delivered' | 'retry' | 'permanent';

/**
 * What an HTTP answer means for a delivery: 2xx delivered; 408, 429, 5xx and no answer at all (network
 * error, timeout: `status` null) may pass later, so the job is retried; anything else (other 4xx, and
 * 3xx: a signed POST is not followed to another address) is a permanent refusal, not retried.
 */
export function outcomeOf(status: number | null): DeliveryOutcome {
  if (status === null) return 'retry';
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'permanent';
}
