import type { Statement } from '../core/db';
import { isoOf } from './model';

/**
 * A table column a read model fills from an event: its name, its PostgreSQL type (the element type of
 * the array it travels in), and how to read it from the event.
 */
export interface Column<E> {
  name: string;
  type: string;
  of: (e: E) => unknown;
}

/**
 * One parameter per column, in column order: the parameters of an `unnest` multi-row insert. Most
 * columns travel as an array of their values. A `jsonb` column (whose `of` returns JSON text, or null)
 * travels as ONE JSON array text of the batch's values, joined without re-escaping: sent as a
 * `jsonb[]` array literal, every document is quoted and backslash-escaped by the client and unescaped
 * and re-parsed by the server, which took half of a batch's time (the projection benchmark, EEG frames).
 */
export function columnValues<E>(columns: readonly Column<E>[], events: readonly E[]): unknown[] {
  return columns.map((c) =>
    c.type === 'jsonb' ? `[${events.map((e) => (c.of(e) as string | null) ?? 'null').join(',')}]` : events.map(c.of),
  );
}

/**
 * `unnest($1::uuid[], $2::timestamptz[], ...)` for the columns, from parameter `$from` on; a `jsonb`
 * column's JSON array text becomes a `jsonb[]` in the server, in order, JSON null as SQL NULL.
 */
export function unnestOf<E>(columns: readonly Column<E>[], from = 1): string {
  const arg = (c: Column<E>, n: number) =>
    c.type === 'jsonb'
      ? `ARRAY(SELECT NULLIF(d, 'null'::jsonb) FROM jsonb_array_elements($${n}::jsonb) WITH ORDINALITY AS j(d, i) ORDER BY i)`
      : `$${n}::${c.type}[]`;
  return `unnest(${columns.map((c, i) => arg(c, i + from)).join(', ')})`;
}

/**
 * The order every read model upserts `sessions` rows in (session_id, then tenant_id, in byte order as
 * SQL's `COLLATE "C"` sorts): one lock order for all projections, so their transactions cannot deadlock.
 */
export const SESSION_LOCK_ORDER = 'session_id COLLATE "C", tenant_id COLLATE "C"';

/** The envelope columns every telemetry table starts with (docs/design.md §2). */
export interface Telemetry {
  event_id: string;
  ts: number;
  tenant_id: string;
  session_id: string;
  device_id: string;
  seq: number;
}

export const telemetryColumns: Column<Telemetry>[] = [
  { name: 'event_id', type: 'uuid', of: (e) => e.event_id },
  { name: 'ts', type: 'timestamptz', of: (e) => isoOf(e.ts) },
  { name: 'tenant_id', type: 'text', of: (e) => e.tenant_id },
  { name: 'session_id', type: 'text', of: (e) => e.session_id },
  { name: 'device_id', type: 'text', of: (e) => e.device_id },
  { name: 'seq', type: 'bigint', of: (e) => e.seq },
];

/**
 * The statement of a telemetry read model: one multi-row insert of the batch into `table` (idempotent
 * by its (tenant_id, session_id, ts, event_id) key, migration 0012), and, from the rows it really inserted (`RETURNING` after `ON CONFLICT DO
 * NOTHING`), the session's `counter` and last_seen_at, plus, with `span`, first_ts and last_ts (the
 * EEG span: the API reports those columns as the EEG stream's, so only the EEG model sets them). So a
 * redelivered event is neither stored nor counted twice. A session is the pair (tenant_id, session_id):
 * rows are counted per pair and upserted on that key, so another tenant's rows under the same session
 * id never count into (or touch) this tenant's session. Sessions are upserted in SESSION_LOCK_ORDER,
 * the order every read model locks them in, so two projections' transactions cannot deadlock. The SQL text is built once per model; only the arrays change per batch.
 */
export function telemetryModelSql<E>(
  table: string,
  columns: readonly Column<E>[],
  counter: string,
  opts: { span?: boolean } = {},
): string {
  const span = opts.span
    ? {
        columns: 'first_ts, last_ts, ',
        values: 'min(ts), max(ts), ',
        set: `
  first_ts = LEAST(sessions.first_ts, EXCLUDED.first_ts),
  last_ts = GREATEST(sessions.last_ts, EXCLUDED.last_ts),`,
      }
    : { columns: '', values: '', set: '' };
  return `WITH ins AS (
  INSERT INTO ${table} (${columns.map((c) => c.name).join(', ')})
  SELECT * FROM ${unnestOf(columns)}
  ON CONFLICT DO NOTHING
  RETURNING tenant_id, session_id, ts)
INSERT INTO sessions (session_id, tenant_id, ${counter}, ${span.columns}last_seen_at)
SELECT session_id, tenant_id, count(*), ${span.values}max(ts)
FROM ins GROUP BY tenant_id, session_id ORDER BY ${SESSION_LOCK_ORDER}
ON CONFLICT (tenant_id, session_id) DO UPDATE SET
  ${counter} = sessions.${counter} + EXCLUDED.${counter},${span.set}
  last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at),
  updated_at = now()`;
}

/** The statements of a telemetry batch: none for an empty one, else the one multi-row statement. */
export function telemetryStatements<E>(sql: string, columns: readonly Column<E>[], events: readonly E[]): Statement[] {
  return events.length === 0 ? [] : [{ text: sql, values: columnValues(columns, events) }];
}

/**
 * For `rebuild --from`: the session counters `telemetryModelSql` keeps, derived from the rows of
 * `table` (the rows older than --from copied into the rebuild's shadow): the count, with `span` the
 * first and last ts, and last_seen_at. The replay of the newer events then adds to them.
 */
export function telemetrySeedSql(table: string, counter: string, opts: { span?: boolean } = {}): string {
  return `INSERT INTO sessions (session_id, tenant_id, ${counter}, ${opts.span ? 'first_ts, last_ts, ' : ''}last_seen_at)
SELECT session_id, tenant_id, count(*), ${opts.span ? 'min(ts), max(ts), ' : ''}max(ts)
FROM ${table} GROUP BY tenant_id, session_id ORDER BY ${SESSION_LOCK_ORDER}`;
}
