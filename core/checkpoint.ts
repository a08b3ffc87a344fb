import type { Pool, PoolClient } from './db';
import { inTransaction, prepared } from './db';
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
   * Several batches (distinct topic-partitions) in ONE unit: for each, what `commit` does (its
   * checkpoint re-read under the lock, `apply` from there unless already past `next`, the checkpoint
   * moved with its effects), all committed together or none. Answers per unit what `apply` answered
   * (`undefined`: already applied). Absent: the reactor commits batch by batch.
   */
  commitMany?<T>(units: readonly CommitUnit<Scope, T>[]): Promise<(T | undefined)[]>;
  /**
   * True when `commit` re-reads the checkpoint under a lock inside its unit, so `read` before it is
   * only an early skip: the reactor may answer it from what it committed itself.
   */
  rereadsInUnit?: boolean;
  /**
   * Runs one part of a batch being split (core/data-error.ts `findOffenders`) so that a failure leaves
   * nothing of the part behind in `scope` (PostgreSQL: a savepoint). Absent: the effects are
   * idempotent, and a part is simply run again.
   */
  isolate?(scope: Scope, part: () => Promise<void>): Promise<void>;
  /**
   * Where the assigned partitions are to be fetched from (on assignment): the checkpoint's next offset,
   * and offset 0 for a partition it has no checkpoint of (a new read model, an emptied database or
   * Redis: rebuilt from the start of the topic, not from Kafka's committed offsets, which are only
   * hints; an offset below the log start resets to the earliest, the reactors consume from the
   * beginning). Absent: Kafka's committed offsets.
   */
  positions?(assignment: Record<string, number[]>): Promise<TopicPartitionOffset[]>;
}

/** One batch of `commitMany`: its topic-partition, span and effects (as `commit` takes them). */
export interface CommitUnit<Scope, T> {
  topic: string;
  partition: number;
  span: { from: bigint; next: bigint };
  apply: (scope: Scope, from: bigint) => Promise<T>;
}

const LOCK_MANY_SQL = `SELECT p.projection, p.topic, p.partition, p.next_offset FROM projection_checkpoints p
JOIN unnest($1::text[], $2::text[], $3::int[]) AS k(projection, topic, partition) USING (projection, topic, partition)
ORDER BY p.projection, p.topic, p.partition FOR UPDATE OF p`;

const MOVE_MANY_SQL = `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`;

/**
 * PostgreSQL table `projection_checkpoints` (`(projection, topic, partition)` → `next_offset`), moved in
 * the batch's own transaction: the statements and the checkpoint commit together or not at all
 * (docs/design.md §4). The row is locked (`FOR UPDATE`) for the transaction, so two owners of a
 * partition during a rebalance apply a batch once. `projection` names the read model, or, where one
 * consumer serves several read models (each reading topics of its own), answers it per topic.
 * `commitMany` locks every row of its batches in one statement (in key order, the order every
 * transaction here locks them in), runs the batches and moves every checkpoint in one statement.
 */
export function postgresCheckpointer(
  pool: Pool,
  projectionOf: string | ((topic: string) => string),
): Checkpointer<PoolClient> {
  const name = typeof projectionOf === 'string' ? () => projectionOf : projectionOf;
  return {
    rereadsInUnit: true,
    async read(topic, partition) {
      const projection = name(topic);
      const { rows } = await pool.query<{ next_offset: string }>(
        `SELECT next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3`,
        [projection, topic, partition],
      );
      return rows[0] ? BigInt(rows[0].next_offset) : 0n;
    },
    commit(topic, partition, { next }, apply) {
      const projection = name(topic);
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
    commitMany(units) {
      const ordered = units
        .map((u, i) => ({ u, i, projection: name(u.topic) }))
        .sort((a, b) => cmp(a.projection, b.projection) || cmp(a.u.topic, b.u.topic) || a.u.partition - b.u.partition);
      // The batches' checkpoint keys as the statements' parallel arrays ($1 projection, $2 topic, $3 partition).
      const keyArrays = (batches: typeof ordered) => [
        batches.map((o) => o.projection),
        batches.map((o) => o.u.topic),
        batches.map((o) => o.u.partition),
      ];
      return inTransaction(pool, async (client) => {
        const locked = await client.query<{
          projection: string;
          topic: string;
          partition: number;
          next_offset: string;
        }>(prepared({ text: LOCK_MANY_SQL, values: keyArrays(ordered) }));
        const at = new Map(
          locked.rows.map((r) => [`${r.projection}\0${r.topic}\0${r.partition}`, BigInt(r.next_offset)]),
        );
        const results: unknown[] = [];
        const moved: typeof ordered = [];
        for (const o of ordered) {
          const from = at.get(`${o.projection}\0${o.u.topic}\0${o.u.partition}`) ?? 0n;
          if (from >= o.u.span.next) continue;
          results[o.i] = await o.u.apply(client, from);
          moved.push(o);
        }
        if (moved.length > 0)
          await client.query(
            prepared({
              text: MOVE_MANY_SQL,
              values: [...keyArrays(moved), moved.map((o) => o.u.span.next.toString())],
            }),
          );
        return units.map((_, i) => results[i]) as Awaited<ReturnType<(typeof units)[number]['apply']>>[];
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
      const { rows } = await pool.query<{ projection: string; topic: string; partition: number; next_offset: string }>(
        `SELECT projection, topic, partition, next_offset FROM projection_checkpoints
         WHERE (projection, topic) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
        [topics.map(name), topics],
      );
      const at = new Map(rows.map((r) => [`${r.topic}\u0000${r.partition}`, r.next_offset]));
      return Object.entries(assignment).flatMap(([topic, ps]) =>
        ps.map((partition) => ({ topic, partition, offset: at.get(`${topic}\u0000${partition}`) ?? '0' })),
      );
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
    // Each batch's scripts as `commit` runs them, then every checkpoint in one HSET: a batch that
    // fails leaves every checkpoint where it was, and the batches already run are re-run (idempotent).
    async commitMany(units) {
      const results = [];
      for (const { apply, span } of units) results.push(await apply(undefined, span.from));
      await redis.hset(
        hashKey,
        Object.fromEntries(units.map((u) => [fieldOf(u.topic, u.partition), u.span.next.toString()])),
      );
      return results;
    },
    async positions(assignment) {
      const wanted = Object.entries(assignment).flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition })));
      if (wanted.length === 0) return [];
      const offsets = await redis.hmget(hashKey, ...wanted.map((w) => fieldOf(w.topic, w.partition)));
      return wanted.map((w, i) => ({ ...w, offset: offsets[i] ?? '0' }));
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

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
