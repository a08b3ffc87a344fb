import type { Kafka } from 'kafkajs';
import { readToEnd } from '../core/read-to-end';

/**
 * The latest value per key of a compacted changelog topic, for the wanted partitions, as of now
 * (a null value, a tombstone, removes the key).
 */
export async function readChangelog(kafka: Kafka, topic: string, partitions: number[]): Promise<Map<string, Buffer>> {
  const latest = new Map<string, Buffer>();
  if (partitions.length === 0) return latest;
  for (const r of await readToEnd(kafka, topic, { partitions })) {
    if (!r.key) continue;
    if (r.value === null) latest.delete(r.key.toString());
    else latest.set(r.key.toString(), r.value);
  }
  return latest;
}
