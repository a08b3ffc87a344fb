import type { RequestHandler, Response } from 'express';
import type { RateDecision, RateLimiter } from '../core/rate-limit';
import { principalOf } from './auth';
import { tooManyRequests } from './problem';

/**
 * IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers): limit, what is left and
 * seconds until the window resets. None when the limiter failed open (nothing is known then).
 */
export function setRateHeaders(res: Response, rate: RateDecision): void {
  if (rate.remaining === undefined || rate.resetMs === undefined) return;
  res.setHeader('RateLimit-Limit', String(rate.limit));
  res.setHeader('RateLimit-Remaining', String(Math.max(0, rate.remaining)));
  res.setHeader('RateLimit-Reset', String(Math.max(1, Math.ceil(rate.resetMs / 1000))));
  res.setHeader('RateLimit-Policy', `${rate.limit};w=${rate.windowS}`);
}

/** Seconds a refused caller should wait: until its window resets, at least 1. */
export const retryAfterS = (rate: RateDecision): number => Math.max(1, Math.ceil((rate.resetMs ?? 1000) / 1000));

/**
 * One point per request per API key (after `authenticate`); 429 + `Retry-After` above the limit.
 * The limiter fails open, so Redis being down never fails a request.
 */
export function rateLimitPerKey(limiter: RateLimiter): RequestHandler {
  return async (_req, res, next) => {
    const rate = await limiter.take(principalOf(res).keyId, 1);
    setRateHeaders(res, rate);
    if (!rate.allowed) {
      const wait = retryAfterS(rate);
      res.setHeader('Retry-After', String(wait));
      throw tooManyRequests(`this key may make ${rate.limit} requests per ${rate.windowS} s; retry in ${wait} s`);
    }
    next();
  };
}
