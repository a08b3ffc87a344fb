import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { eventually } from '../../test/support/env';
import { jobsWorkerDeps } from '../../test/support/jobs';
import { migratedDatabase, type MigratedDatabase } from '../../test/support/database';
import { databasePath, onTimescale } from '../../test/support/database-path';
import { QUEUE } from '../../core/jobs';
import { startJobsWorker } from '../worker';
import { enforceRetention, retentionJob } from './retention';

const DAY = 86_400_000;

/**
 * Retention on the path this project runs on. Plain PostgreSQL: the job deletes old rows in batches.
 * TimescaleDB: the job does nothing; the retention policies of migration 0005 drop whole chunks when
 * they run (here: `CALL run_job`), so a row goes once its whole chunk is past the cut-off (the seeds
 * avoid ages within one chunk interval of a cut-off, which would depend on chunk alignment).
 */
describe(`retention on ${databasePath()} PostgreSQL`, () => {
  let db: MigratedDatabase;
  let pool: Pool;
  const now = Date.now();

  /** One row per age (days) into every retained table. */
  async function seed(ages: number[]) {
    for (const age of ages) {
      const ts = new Date(now - age * DAY).toISOString();
      const common = [randomUUID(), ts, 'acme', `s-${age}`];
      await pool.query(
        `INSERT INTO eeg_frames (event_id, ts, tenant_id, session_id, device_id, seq, channels) VALUES ($1, $2, $3, $4, 'd', 1, '[]')`,
        common,
      );
      await pool.query(
        `INSERT INTO face_frames (event_id, ts, tenant_id, session_id, device_id, seq, face_detected) VALUES ($1, $2, $3, $4, 'd', 1, true)`,
        common,
      );
      await pool.query(
        `INSERT INTO vehicle_frames (event_id, ts, tenant_id, session_id, device_id, seq, speed_kmh, steering_deg) VALUES ($1, $2, $3, $4, 'd', 1, 50, 0)`,
        common,
      );
      await pool.query(
        `INSERT INTO game_events (event_id, ts, tenant_id, session_id, device_id, seq, kind, details) VALUES ($1, $2, $3, $4, 'd', 1, 'Collision', '{}')`,
        common,
      );
      await pool.query(
        `INSERT INTO fatigue_scores (event_id, ts, tenant_id, session_id, window_start_ts, score, level, features, baseline_ready, model_version)
         VALUES ($1, $2, $3, $4, $2, 10, 0, '{}', false, 'fatigue-v1')`,
        common,
      );
      await pool.query(
        `INSERT INTO alert_events (event_id, ts, tenant_id, session_id, alert_id, type) VALUES ($1, $2, $3, $4, 'a', 'AlertCleared')`,
        common,
      );
    }
  }

  const ages = async (table: string) =>
    (await pool.query<{ session_id: string }>(`SELECT session_id FROM ${table} ORDER BY ts`)).rows.map((r) =>
      Number(r.session_id.slice(2)),
    );

  beforeAll(async () => {
    db = await migratedDatabase();
    pool = db.pool;
  });

  afterAll(() => db?.close());

  const none = {
    eeg_frames: 0,
    face_frames: 0,
    vehicle_frames: 0,
    game_events: 0,
    fatigue_scores: 0,
    alert_events: 0,
  };
  const telemetry = ['eeg_frames', 'face_frames', 'vehicle_frames', 'game_events'];

  if (!onTimescale()) {
    it('deletes raw telemetry older than 90 days and scores/alert events older than 365 days, in batches', async () => {
      await seed([400, 366, 200, 120, 91, 89, 30, 0]);
      const r = await enforceRetention(pool, { nowMs: now, batchSize: 2 });
      expect(r).toEqual({
        timescale: false,
        deleted: {
          eeg_frames: 5,
          face_frames: 5,
          vehicle_frames: 5,
          game_events: 5,
          fatigue_scores: 2,
          alert_events: 2,
        },
      });
      for (const t of telemetry) expect(await ages(t)).toEqual([89, 30, 0]);
      for (const t of ['fatigue_scores', 'alert_events']) expect(await ages(t)).toEqual([200, 120, 91, 89, 30, 0]);
      // Nothing left to delete: a second run deletes nothing.
      expect((await enforceRetention(pool, { nowMs: now, batchSize: 2 })).deleted).toEqual(none);
    });
  } else {
    it('leaves deleting to the retention policies, which drop chunks past 90 days (telemetry) and 365 days', async () => {
      await seed([400, 200, 120, 91, 89, 30, 0]);
      expect(await enforceRetention(pool, { nowMs: now, batchSize: 2 })).toEqual({ timescale: true, deleted: {} });
      for (const t of [...telemetry, 'fatigue_scores', 'alert_events'])
        expect(await ages(t)).toEqual([400, 200, 120, 91, 89, 30, 0]);
      const jobs = await pool.query<{ job_id: number }>(
        `SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' ORDER BY job_id`,
      );
      expect(jobs.rows).toHaveLength(7);
      for (const j of jobs.rows) await pool.query('CALL run_job($1)', [j.job_id]);
      for (const t of telemetry) expect(await ages(t)).toEqual([89, 30, 0]);
      for (const t of ['fatigue_scores', 'alert_events']) expect(await ages(t)).toEqual([200, 120, 91, 89, 30, 0]);
    });
  }

  it('runs as the hourly scheduled pg-boss job', async () => {
    await seed([100, 1]);
    const worker = await startJobsWorker(jobsWorkerDeps(db), {
      handlers: [retentionJob],
      trigger: false,
      pollingIntervalSeconds: 0.5,
    });
    try {
      expect((await worker.boss.getSchedules()).map((s) => [s.name, s.cron])).toEqual([[QUEUE.retention, '7 * * * *']]);
      const id = await worker.boss.send(QUEUE.retention, {});
      const job = await eventually(
        () => worker.boss.getJobById(QUEUE.retention, id!, { includeArchive: true }),
        (j) => j?.state === 'completed' || j?.state === 'failed',
        20_000,
      );
      expect(job?.state).toBe('completed');
      expect(job?.output).toEqual(
        onTimescale()
          ? { timescale: true, deleted: {} }
          : {
              timescale: false,
              deleted: { ...none, eeg_frames: 1, face_frames: 1, vehicle_frames: 1, game_events: 1 },
            },
      );
      expect(await ages('eeg_frames')).toEqual(onTimescale() ? [100, 89, 30, 1, 0] : [89, 30, 1, 0]);
    } finally {
      await worker.stop();
    }
  });
});
