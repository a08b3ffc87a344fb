import type { Statement } from '../core/db';
import type { TopicKey } from '../schemas/catalogue';

/** One decoded record handed to a read model. */
export interface ProjectedRecord<T = unknown> {
  topic: TopicKey;
  partition: number;
  offset: string;
  value: T;
}

/**
 * A read model: pure mapping from a batch of decoded records (one topic-partition, offset order) to
 * the SQL statements that apply it. No I/O: the runner applies the statements together with the
 * checkpoint in one transaction. Statements must be idempotent (ON CONFLICT) as a second line of
 * defence behind the checkpoint.
 */
export interface ReadModel {
  /** Stable name: the checkpoint key and part of the consumer group id. */
  name: string;
  topics: readonly TopicKey[];
  project(records: readonly ProjectedRecord[]): Statement[];
}

/** ISO-8601 UTC text for an event time in epoch ms (what the SQL statements bind for timestamptz). */
export const isoOf = (ts: number): string => new Date(ts).toISOString();
