import { prepared } from './db';
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
});
