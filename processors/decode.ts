import type { KafkaMessage } from 'kafkajs';
import { VigilError, isVigilError } from '../core/errors';
import type { AvroSerde } from '../core/serde';
import type { TopicKey } from '../schemas/catalogue';
import { recordRefusal, type TsWindow } from '../schemas/rules';
import type { DriverRecord } from './partition-driver';

/**
 * A fetched batch of one input topic as the partition driver's records, in offset order. A record
 * that cannot be decoded, whose `ts` or `session_id` is missing or differs from its key, that breaks
 * the rule table or whose `ts` is outside the window around its append time, becomes poison: it goes
 * through the merge in place (with its predecessor's ts) and the runner dead-letters it when
 * released. A retriable error (the registry unreachable) propagates: the batch is fetched again.
 */
export async function decodeBatch(
  serde: AvroSerde,
  key: TopicKey,
  messages: readonly KafkaMessage[],
  tsWindow?: TsWindow,
): Promise<DriverRecord<KafkaMessage>[]> {
  const records: DriverRecord<KafkaMessage>[] = [];
  let lastTs = 0;
  for (const message of messages) {
    const session = message.key?.toString() ?? '';
    const appendTs = Number(message.timestamp);
    const base = { offset: message.offset, session, appendTs, meta: message };
    try {
      const { value } =
        serde.decodeKnown<{ ts?: unknown; session_id?: unknown }>(message.value) ??
        (await serde.decode<{ ts?: unknown; session_id?: unknown }>(message.value));
      if (typeof value.ts !== 'number' || value.session_id !== session) {
        throw new VigilError(
          'EVENT_INVALID',
          `record ts or session_id missing, or session_id differs from the key ${JSON.stringify(session)}`,
        );
      }
      const refused = recordRefusal(key, value, appendTs, tsWindow);
      if (refused) throw refused;
      records.push({ ...base, ts: value.ts, value });
      lastTs = value.ts;
    } catch (err) {
      if (!isVigilError(err) || err.retriable) throw err;
      records.push({ ...base, ts: lastTs, poison: err });
    }
  }
  return records;
}
