import { postgresCheckpointer } from './checkpoint';
import { migratedDatabase, type MigratedDatabase } from '../test/support/database';
import { uniqueName } from '../test/support/env';

/**
 * The projections' checkpointer against a real PostgreSQL: a batch's statements and its checkpoint
 * commit in one transaction, or neither does.
 */
describe('postgres checkpointer', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await migratedDatabase();
  });
  afterAll(() => db?.close());

  it('commits a batch and moves its checkpoint in the same transaction', async () => {
    const checkpointer = postgresCheckpointer(db.pool, uniqueName('cp'));
    const topic = uniqueName('topic');
    const from = await checkpointer.commit(topic, 0, { from: 0n, next: 7n }, async (client, at) => {
      // Inside the batch the checkpoint has not moved yet: a first batch finds no row.
      const { rows } = await client.query<{ next_offset: string }>(
        'SELECT next_offset FROM projection_checkpoints WHERE topic = $1',
        [topic],
      );
      return { at, rowsInBatch: rows.length };
    });
    expect({ from, checkpoint: await checkpointer.read(topic, 0) }).toEqual({
      from: { at: 0n, rowsInBatch: 0 },
      checkpoint: 7n,
    });
  });

  it('rolls back the batch and its checkpoint together when the batch fails', async () => {
    const checkpointer = postgresCheckpointer(db.pool, uniqueName('cp'));
    const topic = uniqueName('topic');
    await expect(
      checkpointer.commit(topic, 0, { from: 0n, next: 5n }, async (client) => {
        await client.query('SELECT 1/0');
      }),
    ).rejects.toThrow('division by zero');
    expect(await checkpointer.read(topic, 0)).toBe(0n);
  });
});
