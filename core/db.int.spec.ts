import { Client } from 'pg';
import { inTransaction, prepared } from './db';
import { migratedDatabase, type MigratedDatabase } from '../test/support/database';

/** Named (prepared) statements on a real PostgreSQL connection. */
describe('prepared statements', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await migratedDatabase();
  });
  afterAll(() => db?.close());

  it('prepares a text once per connection and answers each execution with its own values', async () => {
    const text = 'SELECT sum(x)::int AS total FROM unnest($1::int[]) AS u(x)';
    const client = await db.pool.connect();
    try {
      const totals: number[] = [];
      for (const values of [[1, 2], [10, 20, 30], []]) {
        const { rows } = await client.query<{ total: number | null }>(prepared({ text, values: [values] }));
        totals.push(rows[0]!.total ?? 0);
      }
      const { rows } = await client.query<{ name: string; statement: string }>(
        'SELECT name, statement FROM pg_prepared_statements',
      );
      expect({ totals, statements: rows }).toEqual({
        totals: [3, 60, 0],
        statements: [{ name: prepared({ text }).name, statement: text }],
      });
    } finally {
      client.release();
    }
  });

  it('drops a connection whose prepared statement a migration made stale, so the retry succeeds', async () => {
    await db.pool.query('CREATE TABLE prepared_spec (x int)');
    await db.pool.query('INSERT INTO prepared_spec VALUES (1)');
    const read = () =>
      inTransaction(db.pool, async (c) => (await c.query(prepared({ text: 'SELECT * FROM prepared_spec' }))).rows);
    // Every pool connection prepares it, as the projection runner's would.
    const first = await Promise.all([read(), read(), read(), read()]);
    const other = new Client({ connectionString: db.url });
    await other.connect();
    await other.query('ALTER TABLE prepared_spec ADD COLUMN y int DEFAULT 7');
    await other.end();
    const outcomes: string[] = [];
    for (let attempt = 0; attempt < 6; attempt++)
      outcomes.push(
        await read().then(
          (rows) => JSON.stringify(rows),
          (err: Error) => err.message,
        ),
      );
    // Each of the 4 pooled connections fails once, is dropped, and a fresh one answers from then on.
    expect({ first: first[0], outcomes }).toEqual({
      first: [{ x: 1 }],
      outcomes: [...Array(4).fill('cached plan must not change result type'), '[{"x":1,"y":7}]', '[{"x":1,"y":7}]'],
    });
  });
});
