import type { Kafka } from 'kafkajs';
import type { AvroSerde } from '../core/serde';

/**
 * `vigil tail <topic>`: follows a topic (read_committed) and prints each record decoded as one JSON
 * line `{partition, offset, key, value}` (plus `vigil`, the record's `vigil.*` headers, when it has
 * any: a dead letter's reason, error and source); with `fromBeginning`, replays it first.
 * Undecodable values are printed as base64 with the reason, never skipped silently.
 */
export async function tail(
  kafka: Kafka,
  serde: AvroSerde,
  topic: string,
  opts: { fromBeginning: boolean; write: (line: string) => void },
  signal: AbortSignal,
): Promise<void> {
  const consumer = kafka.consumer({ groupId: `vigil-tail-${process.pid}-${Date.now()}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const vigil = Object.fromEntries(
        Object.entries(message.headers ?? {})
          .filter(([k, v]) => k.startsWith('vigil.') && v !== undefined)
          .map(([k, v]) => [k.slice('vigil.'.length), String(v)]),
      );
      const base = {
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        ...(Object.keys(vigil).length ? { vigil } : {}),
      };
      try {
        const { value } = await serde.decode(message.value);
        opts.write(JSON.stringify({ ...base, value }));
      } catch (err) {
        opts.write(
          JSON.stringify({
            ...base,
            undecodable: (err as Error).message,
            value_base64: message.value?.toString('base64') ?? null,
          }),
        );
      }
    },
  });
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await consumer.disconnect();
}
