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

const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * A text cell made safe for spreadsheets (CSV injection, OWASP): a cell starting with `=`, `+`, `-`,
 * `@`, a tab or a carriage return would be run as a formula by Excel, LibreOffice or Sheets, so it gets
 * a leading `'`, which they show as text. A plain number written as text (`-12.5`, how PostgreSQL hands
 * over numeric and bigint columns) is left alone: it is no formula, and quoting it would break sums.
 */
export function escapeFormula(cell: string): string {
  return FORMULA_START.test(cell) && !PLAIN_NUMBER.test(cell) ? `'${cell}` : cell;
}

/**
 * One CSV row: scalars as they are (ts stays epoch milliseconds, as in NDJSON), null and absent as an
 * empty cell, nested records, unions and arrays as their JSON text (RFC 4180 quoting by csv-stringify).
 * Text cells are formula-escaped (`escapeFormula`); numbers are not.
 */
export function csvRow(columns: readonly string[], r: ExportedRecord): string {
  const cells = columns.map((c) => {
    const v = c === 'partition' ? r.partition : c === 'offset' ? r.offset : c === 'key' ? r.key : r.value[c];
    if (v === null || v === undefined) return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return typeof v === 'string' ? escapeFormula(v) : String(v);
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
