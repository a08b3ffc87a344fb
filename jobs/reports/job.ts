import type { Pool } from '../../core/db';
import { VigilError } from '../../core/errors';
import { QUEUE } from '../../core/jobs';
import type { JobHandler } from '../../core/job-handler';
import { pendingOf } from './readiness';
import {
  computeSessionReport,
  type Modality,
  type ReportAlert,
  type ReportScore,
  type ReportSession,
  type SessionReport,
  type StreamStats,
} from './report';

/** Data of a `session-report` job: what the SessionEnded event said (enough to report without a row). */
export interface SessionReportJobData {
  session_id: string;
  tenant_id: string;
  /** Event time of SessionEnded, epoch ms. */
  ended_at: number;
  end_reason: string;
}

/**
 * `session-report`: computes the report of an ended session from PostgreSQL and upserts its
 * `session_reports` row (same rows, same row: only `generated_at` changes on a re-run).
 * When the projections have not caught up with the session yet (`readiness.ts`) it throws the
 * retriable JOB_NOT_READY, so pg-boss runs it again later with backoff; the last allowed attempt writes
 * the report anyway, marked `complete: false` with what was missing, rather than none at all.
 * Retries: 6, from 5 s doubling (about 5 to 10 minutes in all), which covers a projection restart.
 */
export const sessionReportJob: JobHandler<SessionReportJobData> = {
  queue: { name: QUEUE.sessionReport, retryLimit: 6, retryDelay: 5, retryBackoff: true, expireInSeconds: 300 },
  async handle(job, deps) {
    const finalAttempt = job.retryCount >= job.retryLimit;
    const r = await writeSessionReport(deps.pool, job.data, { finalAttempt });
    await deps.tenantDataChanged?.(job.data.tenant_id); // the tenant's cached report answers are stale now
    deps.log.info(
      { session_id: job.data.session_id, complete: r.document.complete, pending: r.document.pending },
      'session report written',
    );
    return { complete: r.document.complete };
  },
};

export async function writeSessionReport(
  pool: Pool,
  ended: SessionReportJobData,
  opts: { finalAttempt: boolean },
): Promise<SessionReport> {
  // A session is the pair (tenant_id, session_id): every read names both, so rows another tenant wrote
  // under the same session id are not this session's.
  const id = ended.session_id;
  const tenant = ended.tenant_id;
  const { rows: sessionRows } = await pool.query<{
    session_id: string;
    tenant_id: string;
    driver_id: string | null;
    vehicle_id: string | null;
    status: string;
    started_at: Date | null;
    ended_at: Date | null;
    end_reason: string | null;
    last_score_at: Date | null;
    open_alert_count: number;
  }>(
    `SELECT session_id, tenant_id, driver_id, vehicle_id, status, started_at, ended_at, end_reason, last_score_at,
            open_alert_count
     FROM sessions WHERE tenant_id = $1 AND session_id = $2`,
    [tenant, id],
  );
  const row = sessionRows[0];
  const telemetry = await telemetryOf(pool, tenant, id);
  const lastFrames = (['eeg', 'face', 'vehicle'] as const)
    .map((m) => telemetry[m].last_ts)
    .filter((t): t is number => t !== null);
  const pending = pendingOf({
    session: row
      ? {
          status: row.status,
          ended_at: ms(row.ended_at),
          last_score_at: ms(row.last_score_at),
          open_alert_count: row.open_alert_count,
        }
      : null,
    lastTelemetryTs: lastFrames.length ? Math.max(...lastFrames) : null,
  });
  if (pending.length && !opts.finalAttempt) {
    throw new VigilError('JOB_NOT_READY', `report of ${id} waits for the projections: ${pending.join('; ')}`, {
      retriable: true,
      details: { session_id: id, pending },
    });
  }

  const session: ReportSession = row
    ? {
        session_id: id,
        tenant_id: row.tenant_id,
        driver_id: row.driver_id,
        vehicle_id: row.vehicle_id,
        started_at: ms(row.started_at),
        ended_at: ms(row.ended_at) ?? ended.ended_at,
        end_reason: row.end_reason ?? ended.end_reason,
      }
    : {
        session_id: id,
        tenant_id: ended.tenant_id,
        driver_id: null,
        vehicle_id: null,
        started_at: null,
        ended_at: ended.ended_at,
        end_reason: ended.end_reason,
      };
  const { rows: scoreRows } = await pool.query<{ ts: Date; score: number; level: number; model_version: string }>(
    `SELECT ts, score, level, model_version FROM fatigue_scores WHERE tenant_id = $1 AND session_id = $2 ORDER BY ts`,
    [tenant, id],
  );
  const scores: ReportScore[] = scoreRows.map((s) => ({ ...s, ts: s.ts.getTime() }));
  const { rows: alertRows } = await pool.query<{
    alert_id: string;
    reason: string | null;
    level: number | null;
    status: string;
    raised_at: Date | null;
    escalations: number;
    acknowledged_at: Date | null;
    cleared_at: Date | null;
    clear_reason: string | null;
  }>(
    `SELECT alert_id, reason, level, status, raised_at, escalations, acknowledged_at, cleared_at, clear_reason
     FROM alerts WHERE tenant_id = $1 AND session_id = $2`,
    [tenant, id],
  );
  const alerts: ReportAlert[] = alertRows.map((a) => ({
    ...a,
    raised_at: ms(a.raised_at),
    acknowledged_at: ms(a.acknowledged_at),
    cleared_at: ms(a.cleared_at),
  }));

  const report = computeSessionReport({ session, scores, alerts, telemetry, pending });
  const r = report.row;
  await pool.query(
    `INSERT INTO session_reports (session_id, tenant_id, driver_id, vehicle_id, started_at, ended_at, duration_s,
       model_version, score_avg, score_max, level_max, level1_s, level2_s, alert_count, microsleep_count, report,
       generated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now())
     ON CONFLICT (tenant_id, session_id) DO UPDATE SET
       driver_id = EXCLUDED.driver_id, vehicle_id = EXCLUDED.vehicle_id,
       started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, duration_s = EXCLUDED.duration_s,
       model_version = EXCLUDED.model_version, score_avg = EXCLUDED.score_avg, score_max = EXCLUDED.score_max,
       level_max = EXCLUDED.level_max, level1_s = EXCLUDED.level1_s, level2_s = EXCLUDED.level2_s,
       alert_count = EXCLUDED.alert_count, microsleep_count = EXCLUDED.microsleep_count, report = EXCLUDED.report,
       generated_at = EXCLUDED.generated_at`,
    [
      r.session_id,
      r.tenant_id,
      r.driver_id,
      r.vehicle_id,
      r.started_at,
      r.ended_at,
      r.duration_s,
      r.model_version,
      r.score_avg,
      r.score_max,
      r.level_max,
      r.level1_s,
      r.level2_s,
      r.alert_count,
      r.microsleep_count,
      JSON.stringify(report.document),
    ],
  );
  return report;
}

const ms = (d: Date | null): number | null => (d === null ? null : d.getTime());

const streamTables: Record<Modality, string> = { eeg: 'eeg_frames', face: 'face_frames', vehicle: 'vehicle_frames' };

/** Frame counts, devices, first/last frame and the largest gap between frames, per stream. */
async function telemetryOf(pool: Pool, tenantId: string, sessionId: string) {
  const out = {} as Record<Modality, StreamStats>;
  for (const [m, table] of Object.entries(streamTables) as [Modality, string][]) {
    const { rows } = await pool.query<{
      frames: string;
      devices: string;
      first_ts: Date | null;
      last_ts: Date | null;
      max_gap_ms: string | null;
    }>(
      `SELECT count(*) AS frames, count(DISTINCT device_id) AS devices, min(ts) AS first_ts, max(ts) AS last_ts,
              max(gap_ms) AS max_gap_ms
       FROM (SELECT device_id, ts, extract(epoch FROM ts - lag(ts) OVER (ORDER BY ts)) * 1000 AS gap_ms
             FROM ${table} WHERE tenant_id = $1 AND session_id = $2) f`,
      [tenantId, sessionId],
    );
    const s = rows[0]!;
    out[m] = {
      frames: Number(s.frames),
      devices: Number(s.devices),
      first_ts: ms(s.first_ts),
      last_ts: ms(s.last_ts),
      max_gap_ms: s.max_gap_ms === null ? null : Math.round(Number(s.max_gap_ms)),
    };
  }
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM game_events WHERE tenant_id = $1 AND session_id = $2`,
    [tenantId, sessionId],
  );
  return { ...out, game_events: Number(rows[0]!.n) };
}
