import type { Message } from 'kafkajs';
import { requestsOf } from './produce-requests';

const msg = (key: string, bytes: number): Message => ({ key, value: Buffer.alloc(bytes, 1) });
const keysOf = (requests: ReturnType<typeof requestsOf>) =>
  requests.map((r) => r.map(({ topic, messages }) => `${topic}:${messages.map((m) => String(m.key)).join(',')}`));

describe('a commit split into produce requests', () => {
  it('keeps everything in one request while it fits', () => {
    const out = new Map([
      ['scores', [msg('a', 100), msg('b', 100)]],
      ['changelog', [msg('a', 100)]],
    ]);
    expect(keysOf(requestsOf(out, 1_000))).toEqual([['scores:a,b', 'changelog:a']]);
  });

  it('starts a new request before one would pass the byte limit, keeping each topic in order', () => {
    // Each message counts key + value + 64 bytes of overhead: 1 + 300 + 64 = 365.
    const out = new Map([
      ['scores', [msg('a', 300), msg('b', 300), msg('c', 300)]],
      ['changelog', [msg('d', 300)]],
    ]);
    expect(keysOf(requestsOf(out, 800))).toEqual([['scores:a,b'], ['scores:c', 'changelog:d']]);
  });

  it('sends a message larger than the limit alone rather than dropping it', () => {
    const out = new Map([['late', [msg('a', 10), msg('big', 5_000), msg('b', 10)]]]);
    expect(keysOf(requestsOf(out, 1_000))).toEqual([['late:a'], ['late:big'], ['late:b']]);
  });

  it('makes no request for an empty commit', () => {
    expect(requestsOf(new Map())).toEqual([]);
  });
});
