import { isUtf8 } from 'node:buffer';
import express, { type RequestHandler } from 'express';
import { unsupportedMediaType, type HttpProblem } from './problem';

/** The media types read as JSON. */
const JSON_TYPES = ['application/json', 'application/*+json'];

interface JsonBodyOptions {
  /** Bodies larger than this are refused (413, before they are read to the end). */
  maxBytes: number;
  /** Only requests of these methods have their body checked and parsed; default every method. */
  methods?: ReadonlySet<string>;
  /** The problem for a request without a body; default none (the body stays undefined). */
  whenEmpty?: () => HttpProblem;
  /** Only arrays and objects at the top (body-parser's `strict`); default true. */
  strict?: boolean;
  /** Refuse bytes that are not UTF-8 (400) instead of letting the parser replace them; default true. */
  utf8Only?: boolean;
}

/**
 * JSON bodies only, for the API and the ingest gateway: a body of another media type is 415 before
 * anything is read; the body is bounded (413), must be valid JSON (400) and, with `utf8Only`, UTF-8
 * (400: the parser would otherwise replace bad bytes silently). The problems are written by
 * problem.ts's `problemHandler`.
 */
export function jsonBody(opts: JsonBodyOptions): RequestHandler[] {
  const applies = (method: string) => !opts.methods || opts.methods.has(method);
  const parse = express.json({
    limit: opts.maxBytes,
    strict: opts.strict ?? true,
    type: () => true,
    verify:
      (opts.utf8Only ?? true)
        ? (_req, _res, buf) => {
            if (!isUtf8(buf))
              throw Object.assign(new Error('is not valid UTF-8'), { status: 400, type: 'entity.verify.failed' });
          }
        : undefined,
  });
  return [
    (req, _res, next) => {
      if (!applies(req.method)) return next();
      const type = req.is(JSON_TYPES);
      if (type === null && opts.whenEmpty) throw opts.whenEmpty();
      if (type === false) {
        throw unsupportedMediaType(
          `Content-Type ${JSON.stringify(req.get('content-type') ?? '')} is not supported: send application/json`,
        );
      }
      next();
    },
    (req, res, next) => (applies(req.method) ? parse(req, res, next) : next()),
  ];
}
