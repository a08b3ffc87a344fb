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
  /** What the statements write, so `vigil projections rebuild` can rebuild exactly that. */
  writes: ReadModelWrites;
}

/**
 * The PostgreSQL state a read model owns. A rebuild replays the model into a shadow copy of these and
 * swaps them in; nothing else is touched. Table names are unqualified, as in the model's SQL.
 */
export interface ReadModelWrites {
  /**
   * Tables only this model writes, replaced whole by a rebuild. `timeColumn` marks event tables (one
   * row per event, at that event time): `rebuild --from` keeps their live rows older than --from.
   * Tables without one hold state folded from the event tables; `--from` re-derives them with `seed`.
   */
  tables: readonly { name: string; timeColumn?: string }[];
  /**
   * Columns of the shared `sessions` table only this model writes; a rebuild sets exactly these (and
   * their defaults where the model has no row). Every model also moves `last_seen_at` forward with
   * GREATEST: a rebuild merges it the same way, so it is never owned.
   */
  sessionColumns: readonly string[];
  /**
   * For `rebuild --from`: statements run in the shadow after the event rows older than --from are
   * copied there, deriving from them the state tables and the owned session columns (counters that
   * the replay of the newer events then continues). Unqualified names resolve to the shadow copies.
   */
  seed: readonly string[];
}

/** ISO-8601 UTC text for an event time in epoch ms (what the SQL statements bind for timestamptz). */
export const isoOf = (ts: number): string => new Date(ts).toISOString();
