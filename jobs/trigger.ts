import type { Kafka } from 'kafkajs';
import type { Pool } from '../core/db';
import type { AvroSerde } from '../core/serde';
import type { Logger } from '../core/logger';
import { enqueue, type PgBoss } from '../core/jobs';
import { Reactor } from '../core/reactor';
import { kafkaOffsetsCheckpointer } from '../core/checkpoint';
import type { TopicNames } from '../schemas/catalogue';
import type { TsWindow } from '../schemas/rules';
import { TRIGGER_TOPICS, jobRequestsOf, type TriggerTopic } from './requests';
import { admitWith } from '../projections/screen';

interface JobTriggerDeps {
  /** The processor's accepted ts window (schemas/rules.ts), checked on externally written topics; absent: not checked. */
  tsWindow?: TsWindow;
  kafka: Kafka;
  serde: AvroSerde;
  topics: TopicNames;
  boss: PgBoss;
  /** PostgreSQL, for session ownership (core/session-owners.ts). */
  pool: Pool;
  log: Logger;
  groupPrefix: string;
}

/**
 * Turns events into jobs (docs/design.md §6): the core/reactor.ts loop with Kafka's committed offsets
 * as checkpoint, group `<prefix>.jobs.trigger`, over the sessions and alerts topics. It enqueues the
 * jobs each batch asks for (`jobRequestsOf`) in one insert, and only then commits the batch's offsets.
 * A crash in between redelivers the batch and enqueues the same deterministic job ids again, which
 * pg-boss ignores: at-least-once enqueue, one job per event. Screening decides whether a job is made:
 * undecodable records, records breaking the rule table and records naming a session another tenant
 * owns (a SessionEnded of another tenant's session asks for no report) are dead-lettered with the
 * reason and ask for no job (../screen.ts); a record whose jobs fail to insert with a data error
 * (SQLSTATE class 22/23) is found by splitting the batch and dead-lettered (DATA_ERROR). Transient
 * errors (database, registry) retry the batch.
 *
 * A new consumer group starts at the topics' end unless `fromBeginning`: deploying the jobs worker does
 * not report every past session nor call webhooks with every past alert.
 */
export class JobTrigger {
  private readonly reactor: Reactor<TriggerTopic, void>;
  /** Job requests enqueued so far (duplicates included: pg-boss drops those). */
  requested = 0;

  constructor(deps: JobTriggerDeps, opts: { fromBeginning?: boolean } = {}) {
    const requestsOf = (records: readonly { topic: TriggerTopic; value: unknown }[]) =>
      records.flatMap((r) => jobRequestsOf(r.topic, r.value));
    this.reactor = new Reactor<TriggerTopic, void>({
      kafka: deps.kafka,
      log: deps.log,
      groupId: `${deps.groupPrefix}.jobs.trigger`,
      topics: new Map(TRIGGER_TOPICS.map((k) => [deps.topics[k], k])),
      fromBeginning: !!opts.fromBeginning,
      admit: admitWith(deps),
      checkpointer: kafkaOffsetsCheckpointer,
      // Job ids derive from event ids, so enqueuing a part of a split batch again is ignored by pg-boss.
      apply: (_, records) => enqueue(deps.boss, requestsOf(records)),
      onApplied: (records) => {
        this.requested += requestsOf(records).length;
      },
      dlqTopic: deps.topics.dlq,
      consumer: 'jobs.trigger',
      spanName: 'trigger jobs',
    });
  }

  start(): Promise<void> {
    return this.reactor.start();
  }

  stop(): Promise<void> {
    return this.reactor.stop();
  }
}
