import { createKafka } from '../../core/kafka';
import { AvroSerde } from '../../core/serde';
import type { JobsWorkerDeps } from '../../jobs/worker';
import { topicNames } from '../../schemas/catalogue';
import type { MigratedDatabase } from './database';
import { testConfig, testLogger } from './env';

/**
 * What `startJobsWorker` needs to run job handlers on a spec's database (test/support/database.ts):
 * a config whose database is that one, its pool, and Kafka clients under a unique topic prefix,
 * never connected unless a handler or the trigger uses them.
 */
export function jobsWorkerDeps(db: MigratedDatabase): JobsWorkerDeps {
  const config = testConfig({ VIGIL_DATABASE_URL: db.url });
  const log = testLogger();
  const topics = topicNames(config.topicPrefix);
  return {
    config,
    pool: db.pool,
    log,
    kafka: createKafka(config.kafka, log, 'test'),
    serde: new AvroSerde(config.schemaRegistryUrl, topics),
    topics,
  };
}
