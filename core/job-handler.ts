import type { TsWindow } from '../schemas/rules';
import type { PgBoss, QueueSpec } from './jobs';
import type { Pool } from './db';
import type { Logger } from './logger';
import type { Kafka } from 'kafkajs';
import type { AvroSerde } from './serde';
import type { TopicNames } from '../schemas/catalogue';

/** What a job handler may use: the pool of the process, its logger and the tunables below. */
export interface JobDeps {
  pool: Pool;
  log: Logger;
  options: JobOptions;
  /** Kafka, serde and topic names, for jobs that read topics (rebuild, export); `vigil jobs` has them. */
  kafka?: Kafka;
  serde?: AvroSerde;
  topics?: TopicNames;
  /** The live runners' accepted ts window (config.tsWindow), for jobs that replay topics (rebuild). */
  tsWindow?: TsWindow;
  /**
   * Called after a job changed what a tenant's cached API answers are computed from (e.g. a new
   * session report): invalidates them. Best effort: a failure is logged, the cache's TTL bounds staleness.
   */
  tenantDataChanged?: (tenantId: string) => Promise<void>;
}

export interface JobOptions {
  /** Timeout of one webhook POST, ms (headers and body). */
  webhookTimeoutMs: number;
  /** Rows one retention DELETE removes at most (short statements, short locks). */
  retentionBatchSize: number;
}

export const defaultJobOptions: JobOptions = { webhookTimeoutMs: 10_000, retentionBatchSize: 10_000 };

/**
 * One kind of job: its queue (name and retry policy, see `QueueSpec` in core/jobs.ts), an optional
 * cron schedule (pg-boss cron, UTC) for jobs that run on the clock, and the handler of one job.
 *
 * The handler's contract: throw to fail the job, and pg-boss runs it again per the queue's retry
 * policy (so throw only what a later attempt can fix: `retriable` VigilErrors, network and database
 * errors); return normally when done, including when the job can never succeed, after recording why
 * where its users look (e.g. `webhook_deliveries.failed_at`). The returned object is the job's output.
 * Handlers must be idempotent: a job can run twice (a worker killed after the work, before completion).
 */
export interface JobHandler<T extends object = object> {
  queue: QueueSpec;
  schedule?: { cron: string; data?: object };
  handle(job: PgBoss.JobWithMetadata<T>, deps: JobDeps): Promise<object | void>;
}
