import { QUEUE } from '../../core/jobs';
import { VigilError } from '../../core/errors';
import type { JobHandler } from '../../core/job-handler';
import { rebuildProjection, type RebuildResult } from './rebuild';

/** What `POST /v1/admin/replays` enqueues for `kind: rebuild` (api/routes/admin.ts). */
interface RebuildJobData {
  kind: 'rebuild';
  projection: string;
  /** ISO-8601: keep the live rows older than this and replay only from here (default: everything). */
  from?: string;
  /** Rebuild even though Kafka no longer holds part of the history (HISTORY_TRUNCATED otherwise). */
  allowTruncated?: boolean;
  /** `*`: rebuilds are enqueued by operator keys only (api/routes/admin.ts). */
  tenant_id: string;
  requested_by: string;
}

/**
 * `projection-rebuild`: rebuilds one PostgreSQL read model from its topics into a shadow and swaps it
 * in (projections/rebuild/rebuild.ts); the job's output is the rebuild's result. One attempt: a rebuild
 * that failed (or found another running: REBUILD_RUNNING) is looked at and requested again.
 */
export const rebuildJob: JobHandler<RebuildJobData> = {
  queue: {
    name: QUEUE.projectionRebuild,
    retryLimit: 0,
    retryDelay: 30,
    retryBackoff: false,
    expireInSeconds: 4 * 3600,
  },
  async handle(job, deps): Promise<RebuildResult> {
    const { kafka, serde, topics } = deps;
    if (!kafka || !serde || !topics)
      throw new VigilError('CONFIG_INVALID', 'the rebuild job needs Kafka and the serde');
    const from = job.data.from === undefined ? undefined : Date.parse(job.data.from);
    deps.log.info({ job: job.id, projection: job.data.projection, from: job.data.from }, 'rebuild started');
    const result = await rebuildProjection(
      { kafka, serde, topics, pool: deps.pool, log: deps.log, tsWindow: deps.tsWindow },
      job.data.projection,
      { ...(from === undefined ? {} : { from }), allowTruncated: job.data.allowTruncated === true },
    );
    deps.log.info({ job: job.id, ...result }, 'rebuild finished');
    return result;
  },
};
