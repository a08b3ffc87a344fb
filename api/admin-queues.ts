import { rebuildJob } from '../projections/rebuild/job';
import { exportJob } from '../projections/replay/job';

/**
 * pg-boss queues of admin requests, with the policies their handlers declare (one attempt each). The
 * handlers run in `vigil jobs`; the API only creates the queues, enqueues and reads status.
 */
export const ADMIN_QUEUES = { rebuild: rebuildJob.queue, export: exportJob.queue } as const;
