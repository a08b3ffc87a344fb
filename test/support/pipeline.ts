import type { Pool } from 'pg';
import type { Config } from '../../core/config';
import { Publisher } from '../../producers/publisher';
import { readModels } from '../../projections/index';
import type { ReadModel } from '../../projections/model';
import { ProjectionRunner } from '../../projections/runner';
import { migratedDatabase, type MigratedDatabaseOptions } from './database';
import { testLogger } from './env';
import { setUp } from './fixture';
import { kafkaFixture, type KafkaFixture } from './stack';

/**
 * Kafka (topics and schemas under the config's prefix), a fresh migrated database with a pool on it
 * (test/support/database.ts), and a connected Publisher: what a spec of the write path needs.
 * `close()` undoes all of it in reverse order, and a setup that fails half-way undoes what it had made
 * before it throws.
 */
export interface PipelineFixture extends KafkaFixture {
  /** Connection URL of the spec's own database. */
  databaseUrl: string;
  pool: Pool;
  publisher: Publisher;
}

export type PipelineOptions = MigratedDatabaseOptions;

export function pipelineFixture(config: Config, options: PipelineOptions = {}): Promise<PipelineFixture> {
  return setUp(async (onClose) => {
    const kafka = await kafkaFixture(config);
    onClose(() => kafka.close());
    const database = await migratedDatabase(options);
    onClose(() => database.close());
    const publisher = new Publisher(kafka.kafka, kafka.serde, kafka.topics);
    await publisher.connect();
    onClose(() => publisher.disconnect());
    // `close` of the result is the fixture's own (it replaces the spread kafka.close).
    return { ...kafka, databaseUrl: database.url, pool: database.pool, publisher };
  });
}

/**
 * A ProjectionRunner (projections/runner.ts) of one read model, given as itself or by its name in
 * projections/index.ts, on the fixture's Kafka, registry and pool, consumer group
 * `<groupPrefix>.projection.<model>`, with the test logger. Not started: the spec starts and stops it.
 */
export function projectionRunner(
  fx: Pick<PipelineFixture, 'kafka' | 'serde' | 'topics' | 'pool'>,
  model: ReadModel | string,
  groupPrefix: string,
): ProjectionRunner {
  const readModel = typeof model === 'string' ? readModels[model] : model;
  if (!readModel) throw new Error(`no read model named ${String(model)}`);
  const { kafka, serde, topics, pool } = fx;
  return new ProjectionRunner(readModel, { kafka, serde, topics, pool, log: testLogger(), groupPrefix });
}
