import type { Kafka } from 'kafkajs';
import type { Pool, PoolClient } from '../core/db';
import type { AvroSerde } from '../core/serde';
import type { Logger } from '../core/logger';
import { Reactor } from '../core/reactor';
import { postgresCheckpointer } from '../core/checkpoint';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import type { TsWindow } from '../schemas/rules';
import type { ReadModel } from './model';
import { admitWith } from './screen';

/**
 * Applies one read model from Kafka to PostgreSQL, exactly once (docs/design.md §4, §6): the
 * core/reactor.ts loop with the `projection_checkpoints` table as checkpointer, group
 * `<prefix>.projection.<model>`, from the topics' beginning. In ONE transaction per batch: the
 * `(projection, topic, partition)` checkpoint row is locked, records below it dropped (a redelivery),
 * the model's statements run, dead letters are produced and the checkpoint moves past the batch; only
 * then is the offset committed to Kafka, a hint (on assignment the runner seeks to its own checkpoint).
 * Poison never stops a partition (issue 11): undecodable records, records breaking the rule table and
 * records naming a session another tenant owns are dead-lettered before apply (./screen.ts); records
 * whose statements fail with a data error (SQLSTATE class 22/23, a date out of range) are found by
 * splitting the batch in savepoints and dead-lettered, and the rest of the batch is applied. Transient
 * errors (connection, serialization failure, deadlock, registry) retry the batch.
 */
interface ProjectionRunnerDeps {
  /** The processor's accepted ts window (schemas/rules.ts), checked on externally written topics; absent: not checked. */
  tsWindow?: TsWindow;
  kafka: Kafka;
  pool: Pool;
  serde: AvroSerde;
  topics: TopicNames;
  log: Logger;
  groupPrefix: string;
}

export class ProjectionRunner {
  private readonly reactor: Reactor<TopicKey, PoolClient>;

  constructor(model: ReadModel, deps: ProjectionRunnerDeps) {
    this.reactor = new Reactor({
      kafka: deps.kafka,
      log: deps.log,
      groupId: `${deps.groupPrefix}.projection.${model.name}`,
      topics: new Map(model.topics.map((k) => [deps.topics[k], k])),
      fromBeginning: true,
      admit: admitWith(deps),
      checkpointer: postgresCheckpointer(deps.pool, model.name),
      apply: async (client, records) => {
        for (const s of model.project(records)) await client.query(s.text, s.values);
      },
      dlqTopic: deps.topics.dlq,
      consumer: `projection.${model.name}`,
      spanName: `project ${model.name}`,
    });
  }

  /** Records applied (not counting redeliveries dropped by the checkpoint, nor dead-lettered ones). */
  get applied(): number {
    return this.reactor.applied;
  }

  start(): Promise<void> {
    return this.reactor.start();
  }

  stop(): Promise<void> {
    return this.reactor.stop();
  }
}
