import type { Kafka } from 'kafkajs';
import { prepared, type Pool, type PoolClient } from '../core/db';
import type { AvroSerde } from '../core/serde';
import type { Logger } from '../core/logger';
import { Reactor } from '../core/reactor';
import { postgresCheckpointer } from '../core/checkpoint';
import type { TopicKey, TopicNames } from '../schemas/catalogue';
import type { TsWindow } from '../schemas/rules';
import type { ReadModel } from './model';
import { admitWith } from './screen';

/**
 * Applies read models from Kafka to PostgreSQL, exactly once (docs/design.md §4, §6): the
 * core/reactor.ts loop with the `projection_checkpoints` table as checkpointer, from the topics'
 * beginning, in ONE consumer group for all the models it is given (each model reads topics no other
 * model reads, so the `(projection, topic, partition)` checkpoint of a batch is that of its topic's
 * model): `<prefix>.projection.<model>` for one model, `<prefix>.projection.postgres` for every read
 * model (`vigil project`), `<prefix>.projection.<a>+<b>` for another set. In ONE transaction per fetch
 * (the batches of the topic-partitions ready together): each batch's checkpoint row is locked, records
 * below it dropped (a redelivery), its model's statements run, dead letters are produced and the
 * checkpoints move past their batches; the offsets committed to Kafka are a hint (on assignment the
 * runner seeks to its own checkpoints).
 * Poison never stops a partition (issue 11): undecodable records, records breaking the rule table and
 * records naming a session another tenant owns are dead-lettered before apply (./screen.ts); records
 * whose statements fail with a data error (SQLSTATE class 22/23, a date out of range) are found by
 * splitting the batch in savepoints and dead-lettered, and the rest of the batch is applied. Transient
 * errors (connection, serialization failure, deadlock, registry) retry the batch.
 */
export interface ProjectionRunnerDeps {
  /** The processor's accepted ts window (schemas/rules.ts), checked on externally written topics; absent: not checked. */
  tsWindow?: TsWindow;
  kafka: Kafka;
  pool: Pool;
  serde: AvroSerde;
  topics: TopicNames;
  log: Logger;
  groupPrefix: string;
  /** Fetch settings (core/config.ts `projectionFetch`); absent: kafkajs's defaults. */
  fetch?: { minBytes: number; maxWaitTimeInMs: number };
}

/** The consumer group of a set of read models (see above). */
export function projectionGroupOf(groupPrefix: string, modelNames: readonly string[], all: readonly string[]): string {
  const names = [...modelNames].sort();
  const every = names.length > 1 && names.length === all.length && all.every((n) => names.includes(n));
  return `${groupPrefix}.projection.${every ? POSTGRES_GROUP : names.join('+')}`;
}

/** The group name of every PostgreSQL read model together. */
export const POSTGRES_GROUP = 'postgres';

export class ProjectionRunner {
  private readonly reactor: Reactor<TopicKey, PoolClient>;

  /** `allNames`: every read model's name, so that the full set gets the `postgres` group. */
  constructor(models: ReadModel | readonly ReadModel[], deps: ProjectionRunnerDeps, allNames: readonly string[] = []) {
    const list = Array.isArray(models) ? (models as readonly ReadModel[]) : [models as ReadModel];
    if (list.length === 0) throw new Error('ProjectionRunner: no read model');
    const modelOf = new Map<string, ReadModel>();
    for (const m of list)
      for (const k of m.topics) {
        const topic = deps.topics[k];
        if (modelOf.has(topic)) throw new Error(`read models ${modelOf.get(topic)!.name} and ${m.name} both read ${k}`);
        modelOf.set(topic, m);
      }
    const byKey = new Map(list.flatMap((m) => m.topics.map((k) => [k, m] as const)));
    const single = list.length === 1 ? list[0]!.name : undefined;
    this.reactor = new Reactor({
      kafka: deps.kafka,
      log: deps.log,
      groupId: projectionGroupOf(
        deps.groupPrefix,
        list.map((m) => m.name),
        allNames,
      ),
      topics: new Map(list.flatMap((m) => m.topics.map((k) => [deps.topics[k], k] as const))),
      fromBeginning: true,
      admit: admitWith(deps),
      checkpointer: postgresCheckpointer(deps.pool, single ?? ((topic) => modelOf.get(topic)!.name)),
      // A batch is one topic-partition: its records are all its topic's model's.
      apply: async (client, records) => {
        const model = records[0] && byKey.get(records[0].topic);
        if (!model) return;
        for (const s of model.project(records)) await client.query(prepared(s));
      },
      dlqTopic: deps.topics.dlq,
      consumer: `projection.${single ?? POSTGRES_GROUP}`,
      spanName: `project ${single ?? POSTGRES_GROUP}`,
      ...(single
        ? {}
        : {
            consumerOf: (topic: string) => `projection.${modelOf.get(topic)!.name}`,
            spanNameOf: (topic: string) => `project ${modelOf.get(topic)!.name}`,
          }),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
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
