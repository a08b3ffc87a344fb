import type { Kafka } from 'kafkajs';
import type { Pool } from '../../core/db';
import type { TopicNames } from '../../schemas/catalogue';
import { readModels } from '../index';

interface ProjectionPosition {
  model: string;
  topic: string;
  /** Sum over partitions of the checkpoint (next offset to apply; 0 where none yet). */
  position: string;
  /** Sum over partitions of the end offset now. */
  end: string;
  /**
   * end − checkpoint, summed over partitions. On transactionally written topics (scores, alerts)
   * each partition's end lies one past its last commit marker, so a caught-up projection shows up to
   * one per partition there.
   */
  lag: string;
}

/** Where each PostgreSQL read model stands on each of its topics (`vigil projections list`). */
export async function projectionPositions(deps: {
  kafka: Kafka;
  pool: Pool;
  topics: TopicNames;
}): Promise<ProjectionPosition[]> {
  const { rows } = await deps.pool.query<{ projection: string; topic: string; partition: number; next_offset: string }>(
    'SELECT projection, topic, partition, next_offset FROM projection_checkpoints',
  );
  const admin = deps.kafka.admin();
  await admin.connect();
  try {
    const out: ProjectionPosition[] = [];
    for (const model of Object.values(readModels)) {
      for (const key of model.topics) {
        const topic = deps.topics[key];
        const ends = await admin.fetchTopicOffsets(topic);
        let position = 0n;
        let end = 0n;
        let lag = 0n;
        for (const partitionEnd of ends) {
          const row = rows.find(
            (r) => r.projection === model.name && r.topic === topic && r.partition === partitionEnd.partition,
          );
          const at = row ? BigInt(row.next_offset) : 0n;
          const low = BigInt(partitionEnd.low);
          const high = BigInt(partitionEnd.high);
          position += at;
          end += high;
          // Offsets below the low watermark are gone (retention): they are not lag.
          lag += high > (at > low ? at : low) ? high - (at > low ? at : low) : 0n;
        }
        out.push({ model: model.name, topic, position: position.toString(), end: end.toString(), lag: lag.toString() });
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
