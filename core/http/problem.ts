import type { ErrorRequestHandler, Response } from 'express';
import { isVigilError, type VigilError } from '../errors';
import type { Logger } from '../logger';

/**
 * RFC 9457 problem details, the body of every error response of Vigil's HTTP services (the query API
 * and the ingest gateway, docs/design.md §7). This folder, core/http/, is their shared HTTP layer: the
 * one place besides api/ and the gateway where HTTP statuses are chosen. No stack trace or internal
 * message leaves the process for a 5xx.
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

function sendProblem(res: Response, p: Problem): void {
  res.status(p.status).type('application/problem+json').json(p);
}

export class HttpProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.title);
  }
}

const PROBLEMS = 'https://vigil.dev/problems';

/** A problem of type `https://vigil.dev/problems/<slug>`, with any extra members (e.g. `errors`). */
export const problem = (
  status: number,
  slug: string,
  title: string,
  detail: string,
  extra: Partial<Problem> = {},
): HttpProblem => new HttpProblem({ type: `${PROBLEMS}/${slug}`, title, status, detail, ...extra });

/** 400: each offending field and what is wrong with it. */
export const badRequest = (errors: { field: string; message: string }[]): HttpProblem =>
  problem(400, 'invalid-request', 'Invalid request', errors.map((e) => `${e.field}: ${e.message}`).join('; '), {
    errors,
  });

export const notFound = (what: string): HttpProblem => problem(404, 'not-found', 'Not found', `${what} not found`);

/** 401: no key, or not a valid active one. The caller sets `WWW-Authenticate`. */
export const unauthorized = (detail: string): HttpProblem => problem(401, 'unauthorized', 'Unauthorized', detail);

/** 403: a valid key whose role may not do this. */
export const forbidden = (detail: string): HttpProblem => problem(403, 'forbidden', 'Forbidden', detail);

/** 429: over the caller's rate. The caller sets `Retry-After`. */
export const tooManyRequests = (detail: string): HttpProblem =>
  problem(429, 'rate-limited', 'Too Many Requests', detail);

/** 415: a body of another media type than the route accepts. */
export const unsupportedMediaType = (detail: string): HttpProblem =>
  problem(415, 'unsupported-media-type', 'Unsupported Media Type', detail);

/** What differs between the services' last error handlers. */
interface ProblemHandlerOptions {
  /** The problem a VigilError becomes; undefined (or no `problemOf`): a bare 500, logged. */
  problemOf?: (err: VigilError) => Problem | undefined;
  /** Appended to the 413 detail, e.g. the setting that bounds the body and what to do instead. */
  bodyTooLargeHint?: string;
  /** The `(body)` message of a body that is not JSON (or not UTF-8), from the parser's message. */
  describeUnparsable?: (message: string) => string;
  /** `Retry-After` (seconds) on every 503; none when absent. */
  retryAfterUnavailableS?: number;
}

/**
 * The last error handler of an app: HttpProblems as they are; body-parser errors (413 too large,
 * 400 malformed JSON or invalid UTF-8, 415 unsupported charset) and express's own (400 bad %-escape
 * in a path) as problems; VigilErrors as `problemOf` says; anything else a bare 500, logged, never
 * echoed. An error after the response started (a streamed export) can only end the connection.
 */
export function problemHandler(log: Logger, opts: ProblemHandlerOptions = {}): ErrorRequestHandler {
  const send = (res: Response, p: Problem) => {
    if (p.status === 503 && opts.retryAfterUnavailableS !== undefined) {
      res.setHeader('Retry-After', String(opts.retryAfterUnavailableS));
    }
    sendProblem(res, p);
  };
  return (err, req, res, _next) => {
    if (res.headersSent) {
      log.warn({ err, path: req.path }, 'error after the response started; closing the connection');
      res.destroy();
      return;
    }
    if (err instanceof HttpProblem) return send(res, err.problem);
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : undefined;
    if (status === 413) {
      return send(res, {
        type: `${PROBLEMS}/body-too-large`,
        title: 'Content Too Large',
        status,
        detail: `the body is larger than ${err.limit} bytes${opts.bodyTooLargeHint ?? ''}`,
      });
    }
    if (status === 400 && (err.type === 'entity.parse.failed' || err.type === 'entity.verify.failed')) {
      const message = String(err.message);
      return send(
        res,
        badRequest([{ field: '(body)', message: opts.describeUnparsable?.(message) ?? message }]).problem,
      );
    }
    if (status) {
      return send(res, {
        type: 'about:blank',
        title: String(err.type ?? 'Bad request'),
        status,
        detail: String(err.expose === false ? 'bad request' : err.message),
      });
    }
    const mapped = isVigilError(err) ? opts.problemOf?.(err) : undefined;
    if (mapped) {
      if (mapped.status >= 500)
        log.warn({ err, path: req.path, code: (err as VigilError).code }, 'dependency unavailable');
      return send(res, mapped);
    }
    log.error({ err, path: req.path }, 'unhandled error');
    send(res, { type: 'about:blank', title: 'Internal Server Error', status: 500 });
  };
}
