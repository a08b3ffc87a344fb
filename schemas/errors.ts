/**
 * Every error Vigil raises on purpose carries a stable `code`, its `cause`, and whether retrying the
 * same operation can succeed (`retriable`). Callers branch on `code` and `retriable`, never on messages.
 * HTTP statuses are chosen in api/ and core/http/ only.
 *
 * Defined here, with the contract, because the codes are part of it (a dead letter's `vigil.dlq.reason`
 * header is the code in lower case, a problem's type ends in it) and the rule table (rules.ts) raises
 * them; schemas/ imports nothing from the rest of Vigil. Code outside schemas/ imports core/errors.ts.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'EVENT_INVALID'
  | 'EVENT_UNDECODABLE'
  | 'SCHEMA_UNKNOWN'
  | 'SCHEMA_REGISTRY_UNAVAILABLE'
  | 'KAFKA_UNAVAILABLE'
  | 'DATABASE_UNAVAILABLE'
  | 'JOB_NOT_READY'
  | 'WEBHOOK_UNDELIVERED'
  | 'NOT_FOUND'
  | 'REBUILD_RUNNING'
  | 'REBUILD_ABORTED'
  | 'HISTORY_TRUNCATED'
  | 'MODEL_UNKNOWN'
  | 'REQUEST_INVALID'
  /** An event breaks the rule table (schemas/rules.ts): a value outside its physical range or format. */
  | 'RULE_VIOLATION'
  /** An event names a session owned by another tenant (core/session-owners.ts). */
  | 'TENANT_MISMATCH'
  /** An event's `ts` is outside the accepted window around the receiving clock. */
  | 'TS_OUT_OF_WINDOW'
  /** A record's statements failed with a data error (SQLSTATE class 22 or 23, a date out of range). */
  | 'DATA_ERROR';

export class VigilError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  /** Extra machine-readable facts, e.g. the offending field path. */
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { cause?: unknown; retriable?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'VigilError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
    this.details = opts.details ?? {};
  }
}

export const isVigilError = (e: unknown): e is VigilError => e instanceof VigilError;

/** Best-effort message of anything thrown. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
