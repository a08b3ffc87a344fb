import { createHash } from 'node:crypto';

/**
 * Deterministic, UUID-shaped ids: the first 16 bytes of SHA-256 over the parts, with the RFC 9562
 * version 8 (custom, name-based) and variant bits set. The same parts always give the same id, so a
 * replay re-emits the same `event_id`s and `alert_id`s and every consumer's idempotency holds.
 */
export function uuidFrom(...parts: readonly (string | number)[]): string {
  const h = createHash('sha256').update(parts.join('\u001f')).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const s = h.subarray(0, 16).toString('hex');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

const NS = 'vigil/fatigue';

/**
 * docs/design.md §5: an alert's id derives from (session, reason, start time). The model version is
 * part of the seed too, so re-scoring history with another model never collides with this one's alerts.
 */
export const alertIdOf = (modelVersion: string, sessionId: string, reason: string, startTs: number): string =>
  uuidFrom(NS, 'alert', modelVersion, sessionId, reason, startTs);

/** event_id of the score of the window ending at `windowEnd`. */
export const scoreEventIdOf = (modelVersion: string, sessionId: string, windowEnd: number): string =>
  uuidFrom(NS, 'score', modelVersion, sessionId, windowEnd);

/** event_id of one step of an alert's life cycle (`seq`: escalation count, 0 otherwise). */
export const alertEventIdOf = (alertId: string, type: string, seq: number): string =>
  uuidFrom(NS, 'alert-event', alertId, type, seq);

/**
 * A 32-bit FNV-1a hash of an input's `event_id`: what the reorder buffer keeps to recognise a
 * producer's resend (same source, ts and hash) without holding 36-character ids in every snapshot.
 * Two different events of one session would have to share source, ts and hash to be taken for copies.
 */
export function eventIdHash(eventId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < eventId.length; i++) {
    h ^= eventId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
