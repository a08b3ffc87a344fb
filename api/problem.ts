import type { ErrorCode, VigilError } from '../core/errors';
import type { Problem } from '../core/http/problem';

/**
 * The API's VigilErrors as problems (the rest of problem+json is core/http/problem.ts, shared with the
 * ingest gateway): the only place the API turns error codes into HTTP statuses. A 5xx says only that
 * a dependency is unavailable, never which or why.
 */
const statusOf: Partial<Record<ErrorCode, number>> = {
  REQUEST_INVALID: 400,
  EVENT_INVALID: 400,
  NOT_FOUND: 404,
  DATABASE_UNAVAILABLE: 503,
  KAFKA_UNAVAILABLE: 503,
  SCHEMA_REGISTRY_UNAVAILABLE: 503,
};

/** The problem of a VigilError the API knows a status for; undefined for the others (a bare 500). */
export function apiProblemOf(err: VigilError): Problem | undefined {
  const status = statusOf[err.code];
  if (!status) return undefined;
  return {
    type: `https://vigil.dev/problems/${err.code.toLowerCase()}`,
    title: err.code,
    status,
    detail: status < 500 ? err.message : 'a dependency is unavailable, retry later',
  };
}
