import { stringify } from 'csv-stringify/sync';

/** One exported record: where it was in the topic and its decoded value. */
export interface ExportedRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: Record<string, unknown>;
}

export type ExportFormat = 'ndjson' | 'csv';

/** NDJSON: the line `vigil tail` prints, `{partition, offset, key, value}`, and a newline. */
export const ndjsonLine = (r: ExportedRecord): string => `${JSON.stringify(r)}\n`;

/** The CSV columns of a topic: where the record was, then the top-level fields of its value schema. */
export const csvColumns = (valueFields: readonly string[]): string[] => ['partition', 'offset', 'key', ...valueFields];

/** The CSV header row. */
export const csvHeader = (columns: readonly string[]): string => stringify([columns]);

/**
 * One CSV row: scalars as they are (ts stays epoch milliseconds, as in NDJSON), null and absent as an
 * empty cell, nested records, unions and arrays as their JSON text (RFC 4180 quoting by csv-stringify).
 */
export function csvRow(columns: readonly string[], r: ExportedRecord): string {
  const cells = columns.map((c) => {
    const v = c === 'partition' ? r.partition : c === 'offset' ? r.offset : c === 'key' ? r.key : r.value[c];
    if (v === null || v === undefined) return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  });
  return stringify([cells]);
}

/**
 * Whether an event is in the export: event time `ts` in `[from, to)` (either bound optional), and
 * the session and tenant when they are asked for.
 */
export function wanted(
  value: { ts?: unknown; session_id?: unknown; tenant_id?: unknown },
  opts: { from?: number; to?: number; session?: string; tenant?: string },
): boolean {
  const ts = Number(value.ts);
  if (opts.from !== undefined && !(ts >= opts.from)) return false;
  if (opts.to !== undefined && !(ts < opts.to)) return false;
  if (opts.session !== undefined && value.session_id !== opts.session) return false;
  if (opts.tenant !== undefined && value.tenant_id !== opts.tenant) return false;
  return true;
}
