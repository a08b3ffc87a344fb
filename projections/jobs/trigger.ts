import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Pool } from '../../core/db';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { enqueue, type PgBoss } from '../../core/jobs';
import { VigilError, messageOf } from '../../core/errors';
import { deadLetterRefusals } from '../../core/dlq';
import { dataErrorMessage, findOffenders, isDataError } from '../../core/data-error';
import { SessionOwners } from '../../core/session-owners';
import type { TopicNames } from '../../schemas/catalogue';
import type { TsWindow } from '../../schemas/rules';
import { TRIGGER_TOPICS, jobRequestsOf, type TriggerTopic } from './requests';
import { admit } from '../screen';

export interface JobTriggerDeps {
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
 * Turns events into jobs: consumes the sessions and alerts topics (`read_committed`, consumer group
 * `<prefix>.jobs.trigger`), enqueues the jobs each batch asks for (`jobRequestsOf`) in one insert, and
 * only then commits the batch's offsets. A crash in between redelivers the batch and enqueues the same
 * deterministic job ids again, which pg-boss ignores: at-least-once enqueue, one job per event.
 * Undecodable records, records breaking the rule table and records naming a session another tenant
 * owns are dead-lettered with the reason and ask for no job (../screen.ts); a record whose jobs fail
 * to insert with a data error (SQLSTATE class 22/23) is found by splitting the batch and
 * dead-lettered (DATA_ERROR). Transient errors (database, registry) make kafkajs retry the batch.
 *
 * A new consumer group starts at the topics' end unless `fromBeginning`: deploying the jobs worker does
 * not report every past session nor call webhooks with every past alert.
 */
export class JobTrigger {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly byName: Map<string, TriggerTopic>;
  /** What `admit` needs: the serde, the shared session owners, the ts window. */
  private readonly screening: Parameters<typeof admit>[0];
  /** Job requests enqueued so far (duplicates included: pg-boss drops those). */
  requested = 0;

  constructor(
    private readonly deps: JobTriggerDeps,
    private readonly opts: { fromBeginning?: boolean } = {},
  ) {
    this.consumer = deps.kafka.consumer({
      groupId: `${deps.groupPrefix}.jobs.trigger`,
      sessionTimeout: 10_000,
      heartbeatInterval: 2_000,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    this.producer = deps.kafka.producer({ idempotent: true });
    this.byName = new Map(TRIGGER_TOPICS.map((k) => [deps.topics[k], k]));
    this.screening = { serde: deps.serde, owners: new SessionOwners(deps.pool), tsWindow: deps.tsWindow };
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byName.keys()], fromBeginning: !!this.opts.fromBeginning });
    await this.consumer.run({ eachBatchAutoResolve: false, autoCommit: false, eachBatch: (p) => this.onBatch(p) });
  }

  /** Resolves once the consumer has joined its group (partitions assigned). */
  joined(): Promise<void> {
    return new Promise((resolve) => {
      const off = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        off();
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private async onBatch({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isStale }: EachBatchPayload) {
    if (batch.messages.length === 0 || isStale()) return;
    const key = this.byName.get(batch.topic)!;
    // Screening decides whether a job is made: a SessionEnded naming another tenant's session, or
    // breaking the rule table, asks for no report (nor an alert event for a webhook).
    const { good, refused } = await admit(this.screening, key, batch.messages);
    const asks = good.map((r) => ({ message: r.message, requests: jobRequestsOf(key, r.value) }));
    const requests = asks.flatMap((a) => a.requests);
    try {
      await enqueue(this.deps.boss, requests);
    } catch (err) {
      if (!isDataError(err)) throw err; // transient: kafkajs retries the batch
      this.deps.log.warn(
        { topic: batch.topic, partition: batch.partition, err: messageOf(err) },
        'enqueue failed with a data error; splitting the batch to find the offending records',
      );
      // Job ids derive from event ids, so enqueuing a part again is ignored by pg-boss.
      const offenders = await findOffenders(
        asks.filter((a) => a.requests.length > 0),
        (part) =>
          enqueue(
            this.deps.boss,
            part.flatMap((a) => a.requests),
          ),
        { knownBad: true },
      );
      for (const o of offenders) {
        const err = new VigilError('DATA_ERROR', dataErrorMessage(o.err), { cause: o.err });
        refused.push({ message: o.item.message, phase: 'project', err });
      }
    }
    // Dead letters before the offsets that skip them are committed: a crash in between redelivers the
    // batch and dead-letters them again (a duplicate dead letter at worst, never a lost one).
    const to = {
      producer: this.producer,
      dlqTopic: this.deps.topics.dlq,
      log: this.deps.log,
      consumer: 'jobs.trigger',
    };
    await deadLetterRefusals(to, batch.topic, batch.partition, refused);
    this.requested += requests.length;
    resolveOffset(batch.lastOffset());
    await commitOffsetsIfNecessary();
    await heartbeat();
  }
}
