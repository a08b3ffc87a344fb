import { isIPv6 } from 'node:net';
import type { Request, RequestHandler, Response } from 'express';
import type { RateDecision, RateLimiter } from '../rate-limit';
import { tooManyRequests } from './problem';

/**
 * Rate limits of the HTTP services (the limiter itself is core/rate-limit.ts): the headers that tell a
 * caller its budget, and the per-address limit both the API and the ingest gateway put first.
 */

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
 * The client's address: the socket's peer, or with `trustedHops` proxies in front (each appending
 * to X-Forwarded-For) the address the outermost trusted proxy saw. IPv4-mapped IPv6 is written as
 * IPv4; an IPv6 client counts by its /64 (one subscriber's whole allocation, which it may rotate in).
 */
function clientAddress(req: Request, trustedHops: number): string {
  const chain = [
    ...(trustedHops > 0 ? (req.get('x-forwarded-for') ?? '').split(',').map((a) => a.trim()) : []),
    req.socket.remoteAddress ?? 'unknown',
  ].filter(Boolean);
  const raw = chain[Math.max(0, chain.length - 1 - trustedHops)]!;
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(raw);
  if (v4) return v4[1]!;
  return isIPv6(raw) ? `${expandIPv6(raw).slice(0, 4).join(':')}::/64` : raw;
}

function expandIPv6(a: string): string[] {
  const [head, tail] = a.split('%')[0]!.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => (parseInt(g, 16) || 0).toString(16));
}

/**
 * Requests per client address, BEFORE authentication: bounds what one address can make the service
 * do (key lookups in PostgreSQL for made-up keys, health checks, 401s) whatever keys it presents.
 * 429 problem+json with `Retry-After`. Fails open when Redis is down, as the per-key limit.
 */
export function rateLimitPerAddress(limiter: RateLimiter, trustedHops = 0): RequestHandler {
  return async (req, res, next) => {
    const rate = await limiter.take(clientAddress(req, trustedHops), 1);
    if (!rate.allowed) {
      const wait = retryAfterS(rate);
      res.setHeader('Retry-After', String(wait));
      throw tooManyRequests(`this address may make ${rate.limit} requests per ${rate.windowS} s; retry in ${wait} s`);
    }
    next();
  };
}
