import { Pool } from 'pg';
import type { Config } from '../../core/config';
import { migrate } from '../../core/migrate';
import { Publisher } from '../../producers/publisher';
import { testLogger } from './env';
import { createTestDatabase } from './postgres';
import { kafkaFixture, type KafkaFixture } from './stack';

/**
 * Kafka (topics and schemas under the config's prefix), a fresh migrated database with a pool on it,
 * and a connected Publisher: what a spec of the write path needs. `close()` undoes all of it in
 * reverse order, and a setup that fails half-way undoes what it had made before it throws.
 */
export interface PipelineFixture extends KafkaFixture {
  /** Connection URL of the spec's own database. */
  databaseUrl: string;
  pool: Pool;
  publisher: Publisher;
}

export interface PipelineOptions {
  /** Pool size (default 4). */
  poolMax?: number;
  /** Ignore errors of idle pool clients (a database dropped under them at the end). */
  ignoreIdleClientErrors?: boolean;
}

export async function pipelineFixture(config: Config, options: PipelineOptions = {}): Promise<PipelineFixture> {
  const undo: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const step of undo.splice(0).reverse()) await step();
  };
  try {
    const kafka = await kafkaFixture(config);
    undo.push(() => kafka.close());
    const db = await createTestDatabase();
    undo.push(() => db.drop());
    await migrate({ database: db.url, log: testLogger() });
    const pool = new Pool({ connectionString: db.url, max: options.poolMax ?? 4 });
    if (options.ignoreIdleClientErrors) pool.on('error', () => {});
    undo.push(() => pool.end());
    const publisher = new Publisher(kafka.kafka, kafka.serde, kafka.topics);
    await publisher.connect();
    undo.push(() => publisher.disconnect());
    return { ...kafka, databaseUrl: db.url, pool, publisher, close };
  } catch (err) {
    await close();
    throw err;
  }
}
