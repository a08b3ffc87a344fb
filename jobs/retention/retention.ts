import type { Pool } from '../../core/db';
import { QUEUE } from '../../core/jobs';
import type { JobHandler } from '../../core/job-handler';

/**
 * Retention on plain PostgreSQL (docs/design.md §6): raw telemetry is kept 90 days, scores and alert
 * events 365 days; the `sessions`, `alerts` state and `session_reports` stay. On TimescaleDB the
 * retention policies of migration 0005 drop whole chunks, so this job does nothing there.
 *
 * The cut-off is relative to the wall clock: this is an operational job, not event processing.
 */
const RETENTION_DAYS = {
  eeg_frames: 90,
  face_frames: 90,
  vehicle_frames: 90,
  game_events: 90,
  fatigue_scores: 365,
  alert_events: 365,
} as const;

type RetainedTable = keyof typeof RETENTION_DAYS;

const DAY_MS = 86_400_000;

/** What to delete (pure): rows with `ts` before each table's cut-off; nothing when TimescaleDB is installed. */
export function retentionPlan(timescaleInstalled: boolean, nowMs: number): { table: RetainedTable; cutoff: Date }[] {
  if (timescaleInstalled) return [];
  return (Object.entries(RETENTION_DAYS) as [RetainedTable, number][]).map(([table, days]) => ({
    table,
    cutoff: new Date(nowMs - days * DAY_MS),
  }));
}

interface RetentionResult {
  timescale: boolean;
  deleted: Partial<Record<RetainedTable, number>>;
}

/**
 * Deletes what the plan says in batches of at most `batchSize` rows, each its own short statement
 * (and transaction), so the projections writing the same tables never wait long on it.
 */
export async function enforceRetention(pool: Pool, o: { nowMs: number; batchSize: number }): Promise<RetentionResult> {
  const { rows } = await pool.query<{ on: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS on`,
  );
  const timescale = rows[0]!.on;
  const deleted: RetentionResult['deleted'] = {};
  for (const { table, cutoff } of retentionPlan(timescale, o.nowMs)) {
    let total = 0;
    for (;;) {
      // Table names come from RETENTION_DAYS, never from input.
      const r = await pool.query(
        `DELETE FROM ${table} WHERE ctid = ANY (ARRAY (SELECT ctid FROM ${table} WHERE ts < $1 LIMIT $2))`,
        [cutoff.toISOString(), o.batchSize],
      );
      total += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < o.batchSize) break;
    }
    deleted[table] = total;
  }
  return { timescale, deleted };
}

/** `retention`: hourly (7 minutes past, off the top of the hour); retried twice a minute apart. */
export const retentionJob: JobHandler = {
  queue: { name: QUEUE.retention, retryLimit: 2, retryDelay: 60, retryBackoff: false, expireInSeconds: 3600 },
  schedule: { cron: '7 * * * *' },
  async handle(_job, deps) {
    const r = await enforceRetention(deps.pool, { nowMs: Date.now(), batchSize: deps.options.retentionBatchSize });
    deps.log.info(r, r.timescale ? 'retention: TimescaleDB policies apply, nothing to do' : 'retention enforced');
    return r;
  },
};
