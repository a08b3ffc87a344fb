import type { JobHandler } from '../core/job-handler';
import { sessionReportJob } from './reports/job';
import { alertWebhookJob } from './webhooks/deliver';
import { retentionJob } from './retention/retention';
import { rebuildJob } from '../projections/rebuild/job';
import { exportJob } from '../projections/replay/job';

/**
 * Every job `vigil jobs` runs: each entry brings its queue (created at start with its retry policy),
 * an optional cron schedule, and its handler (see `JobHandler` for the contract).
 *
 * To add a job (e.g. `projection-rebuild`): write a `JobHandler` beside the code it drives, name its
 * queue in `QUEUE` (core/jobs.ts) so senders can use the constant, and add it to this list. Whoever
 * sends it (an API route, a command) calls `enqueue(boss, [{ queue, triggerEventId, data }])` with a
 * boss from `startBoss(config.database, { queues: [theHandler.queue], supervise: false, log })`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry has its own data type
export const jobHandlers: readonly JobHandler<any>[] = [
  sessionReportJob,
  alertWebhookJob,
  retentionJob,
  rebuildJob,
  exportJob,
];
