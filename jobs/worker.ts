import type { Kafka } from 'kafkajs';
import type { Config } from '../core/config';
import type { Pool } from '../core/db';
import type { Logger } from '../core/logger';
import type { AvroSerde } from '../core/serde';
import type { TopicNames } from '../schemas/catalogue';
import type { Redis } from '../core/redis';
import { invalidateTenantCache } from '../core/cache';
import { isVigilError, messageOf } from '../core/errors';
import { startBoss, stopBoss, type PgBoss, type QueueSpec } from '../core/jobs';
import { defaultJobOptions, type JobHandler, type JobOptions } from '../core/job-handler';
import { jobHandlers } from './handlers';
import { JobTrigger } from './trigger';
import { jobFinished, jobsInstruments, queueDepths } from './metrics';

/** How often the queue depths (vigil_jobs_queue_depth) are polled. */
const DEPTH_POLL_MS = 10_000;

/** What the jobs worker uses (a Runtime has all of it). */
export interface JobsWorkerDeps {
  config: Config;
  kafka: Kafka;
  serde: AvroSerde;
  topics: TopicNames;
  pool: Pool;
  log: Logger;
  /** For invalidating the API's report cache after a job wrote reports (optional: no cache, nothing to do). */
  redis?: Redis;
}

interface JobsWorkerOptions {
  handlers?: readonly JobHandler[];
  /** Per queue name, retry options that replace the handler's (tests use short delays). */
  queueOverrides?: Record<string, Partial<Omit<QueueSpec, 'name'>>>;
  jobOptions?: Partial<JobOptions>;
  /** How often idle workers poll, seconds (default 2; pg-boss minimum 0.5). */
  pollingIntervalSeconds?: number;
  /** Start the events → jobs trigger (default true). */
  trigger?: boolean;
  /** A new trigger consumer group starts at the beginning of the topics instead of their end. */
  fromBeginning?: boolean;
}

export interface JobsWorker {
  boss: PgBoss;
  trigger?: JobTrigger;
  stop(): Promise<void>;
}

/**
 * `vigil jobs`: pg-boss with one worker per handler (report, webhooks, retention, ...), the cron
 * schedules, and the trigger consumer that turns sessions/alerts events into jobs.
 */
export async function startJobsWorker(deps: JobsWorkerDeps, o: JobsWorkerOptions = {}): Promise<JobsWorker> {
  const handlers = o.handlers ?? jobHandlers;
  const queues = handlers.map((h) => ({ ...h.queue, ...o.queueOverrides?.[h.queue.name] }));
  const t0 = performance.now();
  const boss = await startBoss(deps.config.database, { queues, log: deps.log });
  deps.log.info({ ms: Math.round(performance.now() - t0) }, 'pg-boss started');
  // The depth poll starts with pg-boss, before the trigger's consumer group has joined (which can take
  // a while on a busy broker), so the gauge has its series as soon as /metrics answers.
  jobsInstruments();
  const pollDepths = async () => {
    for (const q of queues) {
      // Jobs before `active`: created and retry.
      const depth = await boss.getQueueSize(q.name).catch(() => undefined);
      if (depth !== undefined) queueDepths.set(q.name, depth);
    }
  };
  const depthTimer = setInterval(() => void pollDepths(), DEPTH_POLL_MS);
  depthTimer.unref();
  await pollDepths();
  const jobDeps = {
    pool: deps.pool,
    log: deps.log,
    options: { ...defaultJobOptions, ...o.jobOptions },
    kafka: deps.kafka,
    serde: deps.serde,
    topics: deps.topics,
    tsWindow: deps.config.tsWindow,
    tenantDataChanged: async (tenantId: string) => {
      if (!deps.redis) return;
      await invalidateTenantCache(deps.redis, deps.config.topicPrefix, tenantId).catch((err: unknown) =>
        deps.log.warn(
          { err: messageOf(err), tenant_id: tenantId },
          'report cache not invalidated; its TTL bounds staleness',
        ),
      );
    },
  };
  let trigger: JobTrigger | undefined;
  try {
    for (const h of handlers) {
      await boss.work(
        h.queue.name,
        { includeMetadata: true, batchSize: 1, pollingIntervalSeconds: o.pollingIntervalSeconds ?? 2 },
        async (jobs) => {
          // batchSize 1: one job per call; what the handler returns becomes the job's output.
          let output: object | void = undefined;
          for (const job of jobs) {
            try {
              output = await h.handle(job, jobDeps);
              jobFinished(h.queue.name, 'completed');
            } catch (err) {
              jobFinished(h.queue.name, job.retryCount < job.retryLimit ? 'retried' : 'failed');
              const waiting = isVigilError(err) && err.retriable;
              deps.log[waiting ? 'info' : 'warn'](
                { queue: h.queue.name, job: job.id, retry: job.retryCount, of: job.retryLimit, err: messageOf(err) },
                job.retryCount < job.retryLimit ? 'job failed; pg-boss retries it' : 'job failed for good',
              );
              throw err;
            }
          }
          return output;
        },
      );
      if (h.schedule) await boss.schedule(h.queue.name, h.schedule.cron, h.schedule.data ?? {}, { tz: 'UTC' });
    }
    if (o.trigger ?? true) {
      await deps.serde.register([]); // decoding fetches writer schemas by id on first sight
      trigger = new JobTrigger(
        {
          kafka: deps.kafka,
          serde: deps.serde,
          topics: deps.topics,
          boss,
          pool: deps.pool,
          log: deps.log,
          groupPrefix: deps.config.topicPrefix,
          tsWindow: deps.config.tsWindow,
        },
        { fromBeginning: o.fromBeginning },
      );
      const joining = performance.now();
      await trigger.start();
      deps.log.info({ ms: Math.round(performance.now() - joining) }, 'trigger consumer joined its group');
    }
  } catch (err) {
    clearInterval(depthTimer);
    await trigger?.stop().catch(() => {});
    await stopBoss(boss).catch(() => {});
    throw err;
  }
  deps.log.info({ queues: queues.map((q) => q.name), trigger: !!trigger }, 'jobs worker running');
  return {
    boss,
    trigger,
    async stop() {
      clearInterval(depthTimer);
      await trigger?.stop();
      await stopBoss(boss);
    },
  };
}
