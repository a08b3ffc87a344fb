import { retryTransient } from './retry';

const failing = (errors: Error[], value = 'ok') => {
  let calls = 0;
  const fn = async () => {
    calls++;
    const err = errors.shift();
    if (err) throw err;
    return value;
  };
  return { fn, calls: () => calls };
};
const transient = (err: unknown) => (err as Error).message === 'race';

describe('retryTransient', () => {
  it('tries again after transient errors and returns the first success', async () => {
    const f = failing([new Error('race'), new Error('race')]);
    await expect(retryTransient(f.fn, transient, 5)).resolves.toBe('ok');
    expect(f.calls()).toBe(3);
  });

  it('throws any other error at once', async () => {
    const f = failing([new Error('broken')]);
    await expect(retryTransient(f.fn, transient, 5)).rejects.toThrow('broken');
    expect(f.calls()).toBe(1);
  });

  it('throws the last transient error after the given number of attempts', async () => {
    const f = failing([new Error('race'), new Error('race'), new Error('race')]);
    await expect(retryTransient(f.fn, transient, 2)).rejects.toThrow('race');
    expect(f.calls()).toBe(2);
  });
});
