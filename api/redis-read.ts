import type { Logger } from '../core/logger';
import { messageOf } from '../core/errors';

/**
 * Redis reads of the API never fail a request (docs/design.md §6): a command that errors or does not
 * answer within `timeoutMs` yields `undefined`, and the caller reads PostgreSQL instead.
 */
export async function softRedis<T>(
  log: Logger,
  what: string,
  fn: () => Promise<T>,
  timeoutMs = 250,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    log.debug({ err: messageOf(err), what }, 'redis unavailable; reading PostgreSQL');
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
