import { compareStreamIds } from './feed-hub';
import { formatSse } from './sse';

describe('feed entry ids and SSE framing', () => {
  it('compares stream ids numerically by time then sequence, not as strings', () => {
    expect(compareStreamIds('1700000000000-0', '1700000000000-0')).toBe(0);
    expect(compareStreamIds('999-5', '1000-0')).toBe(-1);
    expect(compareStreamIds('1000-10', '1000-9')).toBe(1);
    expect(compareStreamIds('0-0', '1-0')).toBe(-1);
  });

  it('frames a message as id, event and data lines ended by a blank line', () => {
    expect(formatSse({ id: '5-1', event: 'score', data: '{"a":1}' })).toBe('id: 5-1\nevent: score\ndata: {"a":1}\n\n');
    expect(formatSse({ data: 'x' })).toBe('data: x\n\n');
  });
});
