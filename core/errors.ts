/**
 * Every error Vigil raises on purpose carries a stable `code`, its `cause`, and whether retrying the
 * same operation can succeed (`retriable`). Callers branch on `code` and `retriable`, never on messages.
 * HTTP statuses are chosen in api/ only.
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
  | 'MODEL_UNKNOWN'
  | 'REQUEST_INVALID';

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
