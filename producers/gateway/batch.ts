import type { TopicKey, ValueOf } from '../../schemas/catalogue';
import { toFieldError } from './field-errors';
import { tsWindowViolation, violationsOf, type TsWindow } from '../../schemas/rules';

/**
 * What `POST /v1/ingest/<stream>` accepts and how a batch is checked before anything is published.
 * Pure: the schema check is passed in (`AvroSerde.validate`), so this runs without a registry.
 */

/** URL stream name → catalogue topic. Only device-written topics: scores, alerts and commands have other writers. */
export const streams = {
  sessions: 'sessions',
  eeg: 'eeg',
  face: 'face',
  vehicle: 'vehicle',
  game: 'game',
} as const satisfies Record<string, TopicKey>;

export type Stream = keyof typeof streams;
type StreamTopic = (typeof streams)[Stream];

export const isStream = (s: string): s is Stream => Object.hasOwn(streams, s);

interface EventError {
  /** Position of the event in the request's array. */
  index: number;
  field: string;
  message: string;
  /** The rule-table rule it breaks (`fraction`, `ts_ahead`, ...); absent for Avro schema errors. */
  rule?: string;
}

type BatchResult<K extends TopicKey> =
  | { ok: true; events: ValueOf<K>[] }
  /** 403: an event names another tenant than the key's. 400: events break the schema. */
  | { ok: false; status: 400 | 403; errors: EventError[]; total: number };

export type Validate = (key: TopicKey, value: unknown) => string[];

/** The gateway's clock and the accepted window of `ts` around it (absent: no window check). */
export interface Clock {
  now: number;
  window: TsWindow;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a whole batch; either every event is good (and returned with its tenant set) or none is sent.
 *
 * Tenant rule: the tenant is the API key's, never the body's. An event without `tenant_id` (absent
 * or null) gets the key's; an event naming another tenant makes the whole request 403. This runs
 * before the schema check, so a batch that is both foreign and malformed answers 403.
 *
 * Beyond the Avro schema (which avsc checks without logical types), each event must keep the rule
 * table (schemas/rules.ts: physical ranges, UUIDs, bounded strings without control characters; an
 * error names the field and the rule) and its `ts` must lie in the window around the gateway's clock.
 * At most `maxErrors` errors are listed; `total` counts them all.
 */
export function checkBatch<K extends StreamTopic>(
  key: K,
  items: readonly unknown[],
  tenantId: string,
  validate: Validate,
  maxErrors = 100,
  clock?: Clock,
): BatchResult<K> {
  const foreign: EventError[] = [];
  const events = items.map((item, index) => {
    if (!isObject(item)) return item;
    const t = item.tenant_id;
    if (t === undefined || t === null) return { ...item, tenant_id: tenantId };
    if (typeof t === 'string' && t !== tenantId) {
      foreign.push({
        index,
        field: 'tenant_id',
        message: `names tenant ${JSON.stringify(t)}, but the API key belongs to ${JSON.stringify(tenantId)}`,
      });
    }
    return item;
  });
  if (foreign.length) return { ok: false, status: 403, errors: foreign.slice(0, maxErrors), total: foreign.length };

  const errors: EventError[] = [];
  let total = 0;
  events.forEach((event, index) => {
    const found: EventError[] = validate(key, event).map((p) => ({ index, ...toFieldError(key, p) }));
    // The rule table and the ts window, for the fields the schema check did not already refuse.
    const seen = new Set(found.map((f) => f.field));
    for (const v of violationsOf(key, event))
      if (!seen.has(v.field)) found.push({ index, field: v.field, message: v.message, rule: v.rule });
    const ts = isObject(event) ? event.ts : undefined;
    const off = clock && typeof ts === 'number' ? tsWindowViolation(ts, clock.now, clock.window) : undefined;
    if (off && found.every((f) => f.field !== 'ts')) found.push({ index, ...off });
    total += found.length;
    for (const e of found) if (errors.length < maxErrors) errors.push(e);
  });
  if (total) return { ok: false, status: 400, errors, total };
  return { ok: true, events: events as ValueOf<K>[] };
}
