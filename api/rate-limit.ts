import type { RequestHandler } from 'express';
import type { RateLimiter } from '../core/rate-limit';
import { tooManyRequests } from '../core/http/problem';
import { retryAfterS, setRateHeaders } from '../core/http/rate-limit';
import { principalOf } from './auth';

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
