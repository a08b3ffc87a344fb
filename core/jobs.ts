import PgBoss from 'pg-boss';
import { v5 as uuidv5 } from 'uuid';
import type { Config } from './config';
import type { Logger } from './logger';
import { retryTransient } from './retry';

export type { PgBoss };

/**
 * The one home of pg-boss (v10): background jobs stored in the configured PostgreSQL database, in
 * pg-boss's own schema `pgboss`. pg-boss installs and upgrades that schema itself when it starts
 * (under its own advisory lock); it is not one of Vigil's SQL migrations.
 *
 * Every queue is created at start with its retry policy (v10 refuses `send` to a queue that does not
 * exist). Jobs are enqueued with a deterministic id (`jobIdOf`), so a redelivered trigger event never
 * makes a second job: pg-boss's job table has the primary key (name, id) and inserts with
 * ON CONFLICT DO NOTHING. That holds while the first job is in the job table (until pg-boss archives
 * it, 12 h after completion by default); handlers stay idempotent as the second line.
 */

/** Queue names. */
export const QUEUE = {
  /** One per SessionEnded: compute and upsert the session's row in `session_reports`. */
  sessionReport: 'session-report',
  /** One per alert event: POST it, signed, to each active webhook of its tenant. */
  alertWebhook: 'alert-webhook',
  /** Hourly (scheduled): delete rows past their retention on plain PostgreSQL. */
  retention: 'retention',
  /** Admin request (POST /v1/admin/replays, kind rebuild): rebuild one PostgreSQL read model from its topics. */
  projectionRebuild: 'projection-rebuild',
  /** Admin request (kind export): decoded events of a topic and time range to a file. */
  replayExport: 'replay-export',
} as const;

/**
 * A queue and its retry policy (pg-boss semantics): a handler that throws fails the job, which runs
 * again after `retryDelay` seconds (with `retryBackoff`: delay × 2^n/2 × (1 + random), n the retry
 * number, so about 1-2×, 2-4×, 4-8× the delay) until it has been retried `retryLimit` times; then it
 * is `failed`. `expireInSeconds` bounds one run (a stuck handler counts as a failure).
 */
export interface QueueSpec {
  name: string;
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  expireInSeconds: number;
}

interface StartBossOptions {
  /** Queues to create (idempotent: an existing queue gets these options). */
  queues: readonly QueueSpec[];
  log: Logger;
  /** Run pg-boss's maintenance and cron scheduling in this process (workers: yes; send-only: no). */
  supervise?: boolean;
  /** How often idle workers poll for jobs, seconds (pg-boss minimum 0.5). */
  pollingIntervalSeconds?: number;
  /** Connections of pg-boss's own pool. */
  poolMax?: number;
  applicationName?: string;
}

/** Starts pg-boss on `database.url` and creates (or updates) the given queues. Stop it with `stopBoss`. */
export async function startBoss(database: Config['database'], o: StartBossOptions): Promise<PgBoss> {
  const supervise = o.supervise ?? true;
  const boss = new PgBoss({
    connectionString: database.url,
    max: o.poolMax ?? 4,
    application_name: o.applicationName ?? 'vigil-jobs',
    supervise,
    schedule: supervise,
    migrate: true,
    ...(o.pollingIntervalSeconds !== undefined ? { pollingIntervalSeconds: o.pollingIntervalSeconds } : {}),
  });
  boss.on('error', (err) => o.log.warn({ err }, 'pg-boss error'));
  await boss.start();
  for (const q of o.queues) {
    const { name, ...policy } = q;
    // create_queue ignores an existing queue; the update then applies this policy to it. Two processes
    // creating queues at once can deadlock in PostgreSQL (40P01, seen in CI: two roles starting
    // pg-boss on one database); the aborted side tries again.
    await retryOnDeadlock(() => boss.createQueue(name, { name, policy: 'standard', ...policy }));
    await retryOnDeadlock(() => boss.updateQueue(name, { name, policy: 'standard', ...policy }));
  }
  return boss;
}

/** Runs `fn`, again (up to 5 attempts, 50-250 ms apart) when PostgreSQL aborted it as a deadlock victim. */
const retryOnDeadlock = <T>(fn: () => Promise<T>): Promise<T> =>
  retryTransient(fn, (err) => (err as { code?: unknown }).code === '40P01', 5);

/** Stops fetching, waits up to `timeoutMs` for running handlers, closes pg-boss's pool. */
export async function stopBoss(boss: PgBoss, timeoutMs = 10_000): Promise<void> {
  await boss.stop({ graceful: true, wait: true, close: true, timeout: timeoutMs });
}

/** Fixed namespace of Vigil's job ids (uuid v5); changing it would break deduplication of in-flight jobs. */
const JOB_ID_NAMESPACE = '5b7c2f0e-3d1a-4c55-9a0e-7c1f6d3b2a91';

/** The deterministic job id for a queue and the event that triggers it. */
export const jobIdOf = (queue: string, triggerEventId: string): string =>
  uuidv5(`${queue}:${triggerEventId}`, JOB_ID_NAMESPACE);

/** A job to enqueue, triggered by one event (its `event_id` makes the job id). */
export interface JobRequest<T extends object = object> {
  queue: string;
  triggerEventId: string;
  data: T;
}

/**
 * Enqueues jobs idempotently, in one statement: a request whose deterministic id is already in the
 * queue is ignored. Retry options come from the queue.
 */
export async function enqueue(boss: PgBoss, requests: readonly JobRequest[]): Promise<void> {
  if (requests.length === 0) return;
  await boss.insert(requests.map((r) => ({ id: jobIdOf(r.queue, r.triggerEventId), name: r.queue, data: r.data })));
}
