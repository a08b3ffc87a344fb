import { isVigilError } from './errors';

/**
 * Poison or transient (issue 11, "poison never stops a partition"): whether an error raised while
 * applying records is caused by the records themselves, so retrying can never succeed and the
 * offending record is to be found and dead-lettered, or by the world around them (a connection, a
 * lock, a restart), so the batch is retried as it is and nothing is dead-lettered.
 *
 * Data errors:
 * - PostgreSQL SQLSTATE class 22 (data exception: 22P05 untranslatable character, 22021 U+0000 in
 *   text, 22008 datetime field overflow, 22003 numeric out of range, ...) and class 23 (integrity
 *   constraint violation);
 * - a RangeError thrown while building statements (`new Date(8.7e15).toISOString()` throws
 *   "Invalid time value", so does BigInt of a fraction, a too long array, ...);
 * - a Redis reply error of a command or script (WRONGTYPE, a Lua runtime error over bad arguments),
 *   except the replies that say the server cannot serve right now (LOADING, BUSY, OOM, READONLY, ...).
 *
 * Everything else is not: connection failures (refused, reset, 08xxx), 40001 serialization failure,
 * 40P01 deadlock, 57P01 admin shutdown, 53xxx insufficient resources, and also the errors of a bug
 * (42xxx undefined column, a TypeError): dead-lettering those would empty a topic into the DLQ, so they
 * stall the partition loudly instead. A retriable VigilError is never a data error, whatever its cause.
 */
export function isDataError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (isVigilError(e) && e.retriable) return false;
    const verdict = verdictOf(e);
    if (verdict !== undefined) return verdict;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Redis error replies (their first word) that mean "not now", not "not this". */
const REDIS_TRANSIENT = new Set([
  'LOADING',
  'BUSY',
  'OOM',
  'READONLY',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'NOREPLICAS',
  'MISCONF',
  'NOSCRIPT',
  'EXECABORT',
]);

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** true / false when this error decides it, undefined to look at its cause. */
function verdictOf(e: unknown): boolean | undefined {
  if (e instanceof RangeError) return true;
  if (typeof e !== 'object' || e === null) return false;
  const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
  // pg's DatabaseError carries the server's SQLSTATE in `code` (Node's own errors use names like ECONNREFUSED).
  if (typeof code === 'string' && SQLSTATE.test(code)) return code.startsWith('22') || code.startsWith('23');
  if (typeof message === 'string' && message.includes('Invalid time value')) return true;
  if (name === 'ReplyError' && typeof message === 'string') {
    const word = message.trim().split(/\s/, 1)[0]!.toUpperCase();
    return !REDIS_TRANSIENT.has(word);
  }
  return undefined;
}

/** One item that failed on its own with a data error. */
interface Offender<T> {
  item: T;
  err: unknown;
}

/**
 * The items that fail on their own with a data error, found by splitting: `apply` is tried on a part,
 * and a part that fails with a data error is halved until single items remain (order kept: the left
 * half is applied before the right). Every good item is applied exactly once, by one successful call.
 * `apply` must leave nothing behind when it fails (a savepoint rolled back, or idempotent writes).
 * A transient error ends the search and is thrown: the caller retries the whole batch.
 *
 * `knownBad`: the whole list already failed with a data error, so the search starts by splitting.
 * k offenders among n items cost O(k log n) calls.
 */
export async function findOffenders<T>(
  items: readonly T[],
  apply: (part: readonly T[]) => Promise<void>,
  opts: { knownBad?: boolean } = {},
): Promise<Offender<T>[]> {
  if (items.length === 0) return [];
  if (!opts.knownBad || items.length === 1) {
    try {
      await apply(items);
      return [];
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (items.length === 1) return [{ item: items[0]!, err }];
    }
  }
  const mid = Math.ceil(items.length / 2);
  const left = await findOffenders(items.slice(0, mid), apply);
  const right = await findOffenders(items.slice(mid), apply);
  return [...left, ...right];
}

/** The message of a data error for a dead letter: the PostgreSQL message with its SQLSTATE. */
export function dataErrorMessage(err: unknown): string {
  const { message, code } = (err ?? {}) as { message?: unknown; code?: unknown };
  const text = typeof message === 'string' ? message : String(err);
  return typeof code === 'string' && SQLSTATE.test(code) ? `${text} (SQLSTATE ${code})` : text;
}
