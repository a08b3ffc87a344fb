import type { Pool, PoolClient } from './db';
import { inTransaction } from './db';
import type { Redis } from './redis';

/** One topic-partition and the offset to fetch next from it. */
interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * Where a consumer of core/reactor.ts keeps how far it applied each topic-partition: the next offset
 * to apply (0n: nothing applied yet). The checkpoint moves together with the batch's effects, so a
 * redelivered batch (a crash, a rebalance) is recognised and not applied twice.
 *
 * `Scope` is what the batch's effects are written through (a PostgreSQL transaction's client; nothing
 * where the effects go elsewhere).
 */
export interface Checkpointer<Scope> {
  /** The next offset to apply of `topic`/`partition`, read outside any unit of work. */
  read(topic: string, partition: number): Promise<bigint>;
  /**
   * Runs `apply` and moves the checkpoint of `topic`/`partition` from `span.from` (what `read`
   * answered) to `span.next` with its effects. `apply` gets the scope and the checkpoint it applies
   * from: a checkpointer that can lock re-reads it inside the unit (it may have moved since `read`:
   * another owner of the partition during a rebalance) and answers `undefined`, without calling
   * `apply`, when it is already at or past `next`. When `apply` throws, the checkpoint stays.
   */
  commit<T>(
    topic: string,
    partition: number,
    span: { from: bigint; next: bigint },
    apply: (scope: Scope, from: bigint) => Promise<T>,
  ): Promise<T | undefined>;
  /**
   * Runs one part of a batch being split (core/data-error.ts `findOffenders`) so that a failure leaves
   * nothing of the part behind in `scope` (PostgreSQL: a savepoint). Absent: the effects are
   * idempotent, and a part is simply run again.
   */
  isolate?(scope: Scope, part: () => Promise<void>): Promise<void>;
  /** Where the assigned partitions are to be fetched from (on assignment); absent: Kafka's committed offsets. */
  positions?(assignment: Record<string, number[]>): Promise<TopicPartitionOffset[]>;
}

/**
 * PostgreSQL table `projection_checkpoints` (`(projection, topic, partition)` → `next_offset`), moved in
 * the batch's own transaction: the statements and the checkpoint commit together or not at all
 * (docs/design.md §4). The row is locked (`FOR UPDATE`) for the transaction, so two owners of a
 * partition during a rebalance apply a batch once.
 */
export function postgresCheckpointer(pool: Pool, projection: string): Checkpointer<PoolClient> {
  return {
    async read(topic, partition) {
      const { rows } = await pool.query<{ next_offset: string }>(
        `SELECT next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3`,
        [projection, topic, partition],
      );
      return rows[0] ? BigInt(rows[0].next_offset) : 0n;
    },
    commit(topic, partition, { next }, apply) {
      return inTransaction(pool, async (client) => {
        const locked = await client.query<{ next_offset: string }>(
          `SELECT next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE`,
          [projection, topic, partition],
        );
        const from = locked.rows[0] ? BigInt(locked.rows[0].next_offset) : 0n;
        if (from >= next) return undefined;
        const result = await apply(client, from);
        await client.query(
          `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
           ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
          [projection, topic, partition, next.toString()],
        );
        return result;
      });
    },
    async isolate(client, part) {
      await client.query('SAVEPOINT vigil_part');
      try {
        await part();
      } catch (err) {
        await client.query('ROLLBACK TO SAVEPOINT vigil_part');
        throw err;
      } finally {
        // Released after a rollback too: parts never nest, so one name serves them all.
        await client.query('RELEASE SAVEPOINT vigil_part').catch(() => {});
      }
    },
    async positions(assignment) {
      const topics = Object.keys(assignment);
      if (topics.length === 0) return [];
      const { rows } = await pool.query<{ topic: string; partition: number; next_offset: string }>(
        `SELECT topic, partition, next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = ANY($2)`,
        [projection, topics],
      );
      return rows
        .filter((r) => assignment[r.topic]?.includes(r.partition))
        .map((r) => ({ topic: r.topic, partition: r.partition, offset: r.next_offset }));
    },
  };
}

/**
 * A Redis hash (`<topic>:<partition>` → next offset), set once the batch's scripts succeeded. Not in
 * their MULTI: a script failing over its data does not abort the others, and the checkpoint must not
 * move before that record is found and dead-lettered. A crash between the scripts and the checkpoint
 * re-applies the batch, which changes nothing as long as the effects are idempotent (every script of
 * the Redis read model is guarded by event time or event id). A Redis that lost its data lost its
 * checkpoint too, and the read model is rebuilt from the topics.
 */
export function redisHashCheckpointer(redis: Redis, hashKey: string): Checkpointer<void> {
  const fieldOf = (topic: string, partition: number) => `${topic}:${partition}`;
  return {
    async read(topic, partition) {
      const value = await redis.hget(hashKey, fieldOf(topic, partition));
      return value ? BigInt(value) : 0n;
    },
    async commit(topic, partition, { from, next }, apply) {
      const result = await apply(undefined, from);
      await redis.hset(hashKey, fieldOf(topic, partition), next.toString());
      return result;
    },
    async positions(assignment) {
      const wanted = Object.entries(assignment).flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition })));
      if (wanted.length === 0) return [];
      const offsets = await redis.hmget(hashKey, ...wanted.map((w) => fieldOf(w.topic, w.partition)));
      return wanted.flatMap((w, i) => (offsets[i] ? [{ ...w, offset: offsets[i] }] : []));
    },
  };
}

/**
 * Kafka's committed offsets of the consumer group as the checkpoint: the reactor commits a batch's
 * offsets after its effects, and Kafka fetches from there, so every record delivered is past the
 * checkpoint (`read` is 0n). A crash between the effects and the offset commit redelivers the batch:
 * at least once, for effects that ignore duplicates (pg-boss job ids derived from event ids).
 */
export const kafkaOffsetsCheckpointer: Checkpointer<void> = {
  read: () => Promise.resolve(0n),
  commit: (_topic, _partition, { from }, apply) => apply(undefined, from),
};
