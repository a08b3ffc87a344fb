import type { Message } from 'kafkajs';

/**
 * Bytes (keys + values) per produce request: a request carries one record batch per partition, and
 * the broker refuses a batch over `max.message.bytes` (1 MiB by default) for good. What a processor
 * commit (outputs, late copies of input records, session snapshots) or a batch of dead letters (whole
 * refused input records) holds can be larger, so it goes out as several requests.
 */
export const REQUEST_MAX_BYTES = 512 * 1024;

/** Messages by topic as produce requests of at most REQUEST_MAX_BYTES each (a larger message alone). */
export function requestsOf(
  out: Map<string, Message[]>,
  maxBytes = REQUEST_MAX_BYTES,
): { topic: string; messages: Message[] }[][] {
  const requests: { topic: string; messages: Message[] }[][] = [];
  let current = new Map<string, Message[]>();
  let bytes = 0;
  const sizeOf = (m: Message) =>
    (m.key ? Buffer.byteLength(m.key) : 0) + (m.value ? Buffer.byteLength(m.value) : 0) + 64;
  for (const [topic, messages] of out) {
    for (const m of messages) {
      const size = sizeOf(m);
      if (bytes > 0 && bytes + size > maxBytes) {
        requests.push([...current].map(([t, ms]) => ({ topic: t, messages: ms })));
        current = new Map();
        bytes = 0;
      }
      (current.get(topic) ?? current.set(topic, []).get(topic)!).push(m);
      bytes += size;
    }
  }
  if (bytes > 0) requests.push([...current].map(([t, ms]) => ({ topic: t, messages: ms })));
  return requests;
}
