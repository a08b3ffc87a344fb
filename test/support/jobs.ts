import type { Config } from '../../core/config';
import { createKafka } from '../../core/kafka';
import { AvroSerde } from '../../core/serde';
import type { JobsWorkerDeps } from '../../jobs/worker';
import { topicNames } from '../../schemas/catalogue';
import type { MigratedDatabase } from './database';
import { testConfig, testLogger } from './env';
import type { KafkaFixture } from './stack';

/** A spec's config and its Kafka fixture (test/support/stack.ts), for handlers that read its topics. */
export interface JobsKafka extends Pick<KafkaFixture, 'kafka' | 'serde' | 'topics'> {
  config: Config;
}

/**
 * What `startJobsWorker` needs to run job handlers on a spec's database (test/support/database.ts):
 * a config whose database is that one, its pool, and Kafka clients. Without `on`, the Kafka clients
 * are under a unique topic prefix and never connected unless a handler or the trigger uses them; with
 * `on`, they are the spec's own, and so are its config's topic prefix and time window.
 */
export function jobsWorkerDeps(db: Pick<MigratedDatabase, 'url' | 'pool'>, on?: JobsKafka): JobsWorkerDeps {
  const log = testLogger();
  if (on) {
    const config = { ...on.config, database: { ...on.config.database, url: db.url } };
    return { config, pool: db.pool, log, kafka: on.kafka, serde: on.serde, topics: on.topics };
  }
  const config = testConfig({ VIGIL_DATABASE_URL: db.url });
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
