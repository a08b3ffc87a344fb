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

const PROBLEMS = 'https://vigil.dev/problems';

/** 401: no key, or not a valid active one. The caller sets `WWW-Authenticate`. */
export const unauthorized = (detail: string): HttpProblem =>
  new HttpProblem({ type: `${PROBLEMS}/unauthorized`, title: 'Unauthorized', status: 401, detail });

/** 403: a valid key whose role may not do this. */
export const forbidden = (detail: string): HttpProblem =>
  new HttpProblem({ type: `${PROBLEMS}/forbidden`, title: 'Forbidden', status: 403, detail });

/** 429: over the key's rate. The caller sets `Retry-After`. */
export const tooManyRequests = (detail: string): HttpProblem =>
  new HttpProblem({ type: `${PROBLEMS}/rate-limited`, title: 'Too Many Requests', status: 429, detail });

/** 415: a body of another media type than the route accepts. */
export const unsupportedMediaType = (detail: string): HttpProblem =>
  new HttpProblem({ type: `${PROBLEMS}/unsupported-media-type`, title: 'Unsupported Media Type', status: 415, detail });

/**
 * The last error handler of an app: HttpProblems as they are; body-parser errors (413 too large,
 * 400 malformed JSON or invalid UTF-8, 415 unsupported charset) and express's own (400 bad %-escape
 * in a path) as problems; VigilErrors by code; anything else a bare 500, logged, never echoed. An
 * error after the response started (a streamed export) can only end the connection.
 */
export function problemHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      log.warn({ err, path: req.path }, 'error after the response started; closing the connection');
      res.destroy();
      return;
    }
    if (err instanceof HttpProblem) return sendProblem(res, err.problem);
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : undefined;
    if (status === 413) {
      return sendProblem(res, {
        type: `${PROBLEMS}/body-too-large`,
        title: 'Content Too Large',
        status,
        detail: `the body is larger than ${err.limit} bytes`,
      });
    }
    if (status === 400 && (err.type === 'entity.parse.failed' || err.type === 'entity.verify.failed')) {
      return sendProblem(res, badRequest([{ field: '(body)', message: String(err.message) }]).problem);
    }
    if (status) {
      return sendProblem(res, {
        type: 'about:blank',
        title: String(err.type ?? 'Bad request'),
        status,
        detail: String(err.expose === false ? 'bad request' : err.message),
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
