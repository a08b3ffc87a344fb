import type { ErrorRequestHandler, Response } from 'express';
import { isVigilError, type ErrorCode } from '../core/errors';
import type { Logger } from '../core/logger';

/**
 * RFC 9457 problem details, the body of every error response. The only place error codes become
 * HTTP statuses. No stack trace or internal message leaves the process for a 5xx.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  /** For validation errors: each offending field and what is wrong with it. */
  errors?: { field: string; message: string }[];
  [k: string]: unknown;
}

const statusOf: Partial<Record<ErrorCode, number>> = {
  REQUEST_INVALID: 400,
  EVENT_INVALID: 400,
  NOT_FOUND: 404,
  DATABASE_UNAVAILABLE: 503,
  KAFKA_UNAVAILABLE: 503,
  SCHEMA_REGISTRY_UNAVAILABLE: 503,
};

export function sendProblem(res: Response, p: Problem): void {
  res.status(p.status).type('application/problem+json').json(p);
}

export class HttpProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.title);
  }
}

export const badRequest = (errors: { field: string; message: string }[]): HttpProblem =>
  new HttpProblem({
    type: 'https://vigil.dev/problems/invalid-request',
    title: 'Invalid request',
    status: 400,
    detail: errors.map((e) => `${e.field}: ${e.message}`).join('; '),
    errors,
  });

export const notFound = (what: string): HttpProblem =>
  new HttpProblem({
    type: 'https://vigil.dev/problems/not-found',
    title: 'Not found',
    status: 404,
    detail: `${what} not found`,
  });

export function problemHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (err instanceof HttpProblem) return sendProblem(res, err.problem);
    // express.json and friends raise errors with a status (400 bad JSON, 413 too large, 415 ...).
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : undefined;
    if (status) {
      return sendProblem(res, {
        type: 'about:blank',
        title: String(err.type ?? 'Bad request'),
        status,
        detail: String(err.message),
      });
    }
    if (isVigilError(err) && statusOf[err.code]) {
      const s = statusOf[err.code]!;
      if (s >= 500) log.warn({ err, path: req.path }, 'dependency unavailable');
      return sendProblem(res, {
        type: `https://vigil.dev/problems/${err.code.toLowerCase()}`,
        title: err.code,
        status: s,
        detail: s < 500 ? err.message : 'a dependency is unavailable, retry later',
      });
    }
    log.error({ err, path: req.path }, 'unhandled error');
    sendProblem(res, { type: 'about:blank', title: 'Internal Server Error', status: 500 });
  };
}
