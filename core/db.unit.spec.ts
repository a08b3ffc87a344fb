import { prepared } from './db';

describe('prepared', () => {
  it('names one text the same way every time, and two texts differently', () => {
    const a = prepared({ text: 'SELECT 1', values: [] });
    expect(prepared({ text: 'SELECT 1', values: [7] })).toEqual({ name: a.name, text: 'SELECT 1', values: [7] });
    expect(a.name).toMatch(/^vigil_[0-9a-f]{24}$/);
    expect(prepared({ text: 'SELECT 2' }).name).not.toBe(a.name);
  });

  it('stops naming past 256 distinct texts, so texts built per call cannot grow the statement caches', () => {
    const names = Array.from({ length: 300 }, (_, i) => prepared({ text: `SELECT ${i + 1000}` }).name);
    const named = names.filter((n) => n !== undefined).length;
    // 'SELECT 1' and 'SELECT 2' above took two of the 256 names (jest runs a file's tests in order).
    expect({ named, last: names.at(-1), again: prepared({ text: 'SELECT 1000' }).name }).toEqual({
      named: 254,
      last: undefined,
      again: names[0],
    });
  });
});
