import { DatabaseError } from 'pg';
import { ReplyError } from 'ioredis';
import { VigilError } from './errors';
import { dataErrorMessage, findOffenders, isDataError } from './data-error';

const pgError = (code: string, message = 'pg says no') => {
  const e = new DatabaseError(message, 0, 'error');
  e.code = code;
  return e;
};
const sysError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
const invalidTime = () => {
  try {
    return new Date(8.7e15).toISOString();
  } catch (err) {
    return err;
  }
};

describe('isDataError: poison (dead-letter the record) or transient (retry the batch)', () => {
  it.each([
    ['22P05 untranslatable character', pgError('22P05')],
    ['22021 U+0000 in text', pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00')],
    ['22008 datetime field overflow', pgError('22008')],
    ['22003 numeric value out of range', pgError('22003')],
    ['23505 unique violation', pgError('23505')],
    ['23514 check violation', pgError('23514')],
    ['a RangeError of date conversion', invalidTime()],
    ['"Invalid time value" of another error class', new Error('Invalid time value')],
    ['a Redis WRONGTYPE reply', new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['a Lua runtime error', new ReplyError('ERR value is not a valid float script: abc, on @user_script:1.')],
    ['a data error as the cause of a plain error', new Error('applying failed', { cause: pgError('22P05') })],
    ['a non-retriable VigilError caused by one', new VigilError('DATA_ERROR', 'x', { cause: pgError('23503') })],
  ])('%s is a data error', (_, err) => {
    expect(isDataError(err)).toBe(true);
  });

  it.each([
    ['connection refused', sysError('ECONNREFUSED')],
    ['connection reset', sysError('ECONNRESET')],
    ['08006 connection failure', pgError('08006')],
    ['08P01 protocol violation', pgError('08P01')],
    ['40001 serialization failure', pgError('40001')],
    ['40P01 deadlock', pgError('40P01')],
    ['57P01 admin shutdown', pgError('57P01')],
    ['53300 too many connections', pgError('53300')],
    ['42703 undefined column (a bug: stall loudly, do not empty the topic)', pgError('42703')],
    ['pg "Connection terminated unexpectedly"', new Error('Connection terminated unexpectedly')],
    [
      'a retriable VigilError, whatever its cause',
      new VigilError('DATABASE_UNAVAILABLE', 'x', { cause: pgError('22P05'), retriable: true }),
    ],
    ['Redis "Connection is closed."', new Error('Connection is closed.')],
    ['Redis LOADING reply', new ReplyError('LOADING Redis is loading the dataset in memory')],
    ['Redis BUSY reply', new ReplyError('BUSY Redis is busy running a script')],
    ['Redis OOM reply', new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")],
    ['Redis READONLY reply', new ReplyError("READONLY You can't write against a read only replica.")],
    ['a TypeError (a bug)', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['undefined', undefined],
    ['a string', 'boom'],
  ])('%s is not a data error', (_, err) => {
    expect(isDataError(err)).toBe(false);
  });

  it('names the SQLSTATE in the dead letter message', () => {
    expect(dataErrorMessage(pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00'))).toBe(
      'invalid byte sequence for encoding "UTF8": 0x00 (SQLSTATE 22021)',
    );
    expect(dataErrorMessage(invalidTime())).toBe('Invalid time value');
  });
});

describe('findOffenders: the items that fail on their own, found by splitting', () => {
  /** An `apply` that fails a part holding any of `bad` (data error), recording every successful part. */
  const applier = (bad: Set<number>, transientAt?: number) => {
    const applied: number[][] = [];
    let calls = 0;
    const apply = async (part: readonly number[]) => {
      calls++;
      if (calls === transientAt) throw pgError('40P01');
      const hit = part.find((i) => bad.has(i));
      if (hit !== undefined) throw pgError('22P05', `bad ${hit}`);
      applied.push([...part]);
    };
    return { apply, applied, calls: () => calls };
  };
  const items = Array.from({ length: 16 }, (_, i) => i);

  it('given no offender, when applied, then one call applies everything', async () => {
    const a = applier(new Set());
    expect(await findOffenders(items, a.apply)).toEqual([]);
    expect(a.applied).toEqual([items]);
  });

  it('given offenders, then each is found once and every good item is applied exactly once, in order', async () => {
    const a = applier(new Set([3, 4, 15]));
    const found = await findOffenders(items, a.apply);
    expect(found.map((o) => o.item)).toEqual([3, 4, 15]);
    expect(found.map((o) => (o.err as Error).message)).toEqual(['bad 3', 'bad 4', 'bad 15']);
    const flat = a.applied.flat();
    expect(flat).toEqual(items.filter((i) => ![3, 4, 15].includes(i)));
  });

  it('given one offender among many, then it costs about 2 log2(n) calls, not one per item', async () => {
    const many = Array.from({ length: 1024 }, (_, i) => i);
    const a = applier(new Set([700]));
    expect((await findOffenders(many, a.apply)).map((o) => o.item)).toEqual([700]);
    expect(a.calls()).toBeLessThanOrEqual(2 * 10 + 1);
    expect(a.applied.flat()).toHaveLength(1023);
  });

  it('given knownBad, then the whole list is not tried again', async () => {
    const a = applier(new Set([0]));
    const found = await findOffenders([0, 1], a.apply, { knownBad: true });
    expect(found.map((o) => o.item)).toEqual([0]);
    expect(a.calls()).toBe(2);
  });

  it('given a transient error mid-search, then it is thrown (the batch is retried, nothing dead-lettered)', async () => {
    const a = applier(new Set([5]), 2);
    await expect(findOffenders(items, a.apply)).rejects.toMatchObject({ code: '40P01' });
  });
});
