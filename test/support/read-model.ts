import { types, type Pool } from 'pg';
import { inTransaction } from '../../core/db';
import { readModels } from '../../projections/index';
import type { ProjectedRecord, ReadModel } from '../../projections/model';
import { migratedDatabase, type MigratedDatabase } from './database';

/**
 * A read model against the real PostgreSQL, as the runner applies it: given these events, then these
 * rows. `readModelDb()` registers the spec file's hooks: one fresh database, migrated with the
 * project's migrations, for the whole file (dropped after it), and every read model's tables and
 * `sessions` emptied before each test, so each test starts from empty read models.
 *
 * Rows read back as plain values: timestamps as ISO-8601 UTC text (`2026-01-01T08:01:00.000Z`, what
 * the models bind), bigint counters as numbers, jsonb parsed, real as its float32 value.
 */
interface ReadModelDb {
  /**
   * Applies `model.project` of the events in one transaction, as the runner does (without the
   * checkpoint): each event a record of the model's first topic, partition 0, at the next offset.
   */
  given(model: ReadModel, events: readonly unknown[]): Promise<void>;
  /**
   * The batch applied once, then again (a redelivery: a replay after a crash before the checkpoint),
   * with what `read` returns after each apply. A model is idempotent when `twice` equals `once`.
   */
  appliedTwice<T>(model: ReadModel, events: readonly unknown[], read: () => Promise<T>): Promise<{ once: T; twice: T }>;
  rows<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * The `sessions` rows, keyed tenant_id and session_id, with the columns `model` owns (its
   * `writes.sessionColumns`) and last_seen_at (which every model moves forward), in key order.
   */
  sessions(model: ReadModel): Promise<Record<string, unknown>[]>;
  /** Empties the read models' tables, as before each test (to apply the same events another way in one test). */
  clear(): Promise<void>;
}

const INT8_OID = 20;
const TIMESTAMPTZ_OID = 1184;

/** The pool's result parsers: int8 as a number (counters are far below 2^53), timestamptz as ISO text. */
const parsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8_OID) return (text: string) => Number(text);
    if (oid === TIMESTAMPTZ_OID) return (text: string) => new Date(text).toISOString();
    return types.getTypeParser(oid, format as 'text');
  }) as typeof types.getTypeParser,
};

/**
 * Every table a read model writes, and the `sessions` they share. Emptied with DELETE, not TRUNCATE:
 * on these few rows a DELETE takes a millisecond, a TRUNCATE of them all hundreds on a busy server.
 */
const readModelTables = [
  ...new Set(Object.values(readModels).flatMap((m) => m.writes.tables.map((t) => t.name))),
  'sessions',
];

export function readModelDb(): ReadModelDb {
  let db: MigratedDatabase | undefined;
  let nextOffset = 0;

  const open = (): Pool => {
    if (!db) throw new Error('readModelDb: used outside a test (the database is made in beforeAll)');
    return db.pool;
  };

  beforeAll(async () => {
    db = await migratedDatabase({ poolMax: 2, types: parsers });
  });

  afterAll(() => db?.close());

  const clear = async (): Promise<void> => {
    await open().query(readModelTables.map((t) => `DELETE FROM ${t};`).join('\n'));
    nextOffset = 0;
  };
  beforeEach(clear);

  const given = async (model: ReadModel, events: readonly unknown[]): Promise<void> => {
    const records: ProjectedRecord[] = events.map((value) => ({
      topic: model.topics[0]!,
      partition: 0,
      offset: String(nextOffset++),
      value,
    }));
    await inTransaction(open(), async (client) => {
      for (const statement of model.project(records)) await client.query(statement.text, statement.values);
    });
  };

  const rows = async <T>(sql: string, params: unknown[] = []): Promise<T[]> =>
    (await open().query(sql, params)).rows as T[];

  return {
    given,
    rows,
    clear,
    async appliedTwice(model, events, read) {
      await given(model, events);
      const once = await read();
      await given(model, events);
      return { once, twice: await read() };
    },
    sessions: (model) =>
      rows(
        `SELECT ${['tenant_id', 'session_id', ...model.writes.sessionColumns, 'last_seen_at'].join(', ')}
         FROM sessions ORDER BY tenant_id, session_id`,
      ),
  };
}
