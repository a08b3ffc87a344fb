import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { migratedDatabase, type MigratedDatabase } from '../../test/support/database';
import { isVigilError } from '../../core/errors';
import { writeSessionReport } from './job';

const T0 = Date.UTC(2026, 0, 1, 8, 0, 0);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** The report handler against PostgreSQL: given the session's rows, the exact session_reports row. */
describe('session report job (PostgreSQL)', () => {
  let db: MigratedDatabase;
  let pool: Pool;
  const ended = { session_id: 's1', tenant_id: 'acme', ended_at: T0 + 60_000, end_reason: 'COMPLETED' };

  beforeAll(async () => {
    db = await migratedDatabase();
    pool = db.pool;
    await pool.query(
      `INSERT INTO sessions (session_id, tenant_id, driver_id, vehicle_id, status, started_at, ended_at, end_reason,
         last_score_at, open_alert_count)
       VALUES ('s1', 'acme', 'd1', 'v1', 'ended', $1, $2, 'COMPLETED', $3, 0)`,
      [at(0), at(60), at(55)], // the last score (+60 s) is not projected yet
    );
    for (const s of [0, 10, 58]) {
      await pool.query(
        `INSERT INTO face_frames (event_id, ts, tenant_id, session_id, device_id, seq, face_detected, eye_closure)
         VALUES ($1, $2, 'acme', 's1', 'cam1', $3, true, 0.1)`,
        [randomUUID(), at(s), s],
      );
    }
    await pool.query(
      `INSERT INTO game_events (event_id, ts, tenant_id, session_id, device_id, seq, kind, details)
                      VALUES ($1, $2, 'acme', 's1', 'sim', 1, 'Collision', '{}')`,
      [randomUUID(), at(30)],
    );
    await addScore(55, 40.5, 0);
    await pool.query(
      `INSERT INTO alerts (alert_id, tenant_id, session_id, level, reason, status, raised_at, escalations, cleared_at,
         clear_reason, last_event_ts)
       VALUES ('al1', 'acme', 's1', 1, 'drowsy', 'cleared', $1, 0, $1, 'session_ended', $1)`,
      [at(60)],
    );
  });

  async function addScore(s: number, score: number, level: number) {
    await pool.query(
      `INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, features,
         baseline_ready, model_version)
       VALUES ('s1', $1, $2, 'acme', $3, $4, $5, '{}', false, 'fatigue-v1')`,
      [at(s), randomUUID(), at(s - 60), score, level],
    );
  }

  afterAll(() => db?.close());

  it('waits (retriable JOB_NOT_READY) while the scores have not reached the last frame', async () => {
    const err = await writeSessionReport(pool, ended, { finalAttempt: false }).catch((e: unknown) => e);
    expect(isVigilError(err) && { code: err.code, retriable: err.retriable, details: err.details }).toEqual({
      code: 'JOB_NOT_READY',
      retriable: true,
      details: { session_id: 's1', pending: ['scores not projected up to the end'] },
    });
    expect((await pool.query(`SELECT 1 FROM session_reports`)).rowCount).toBe(0);
  });

  it('on the last attempt writes what there is, marked incomplete', async () => {
    const r = await writeSessionReport(pool, ended, { finalAttempt: true });
    expect(r.document.complete).toBe(false);
    const { rows } = await pool.query(`SELECT score_max, report->'pending' AS pending FROM session_reports`);
    expect(rows).toEqual([{ score_max: 40.5, pending: ['scores not projected up to the end'] }]);
  });

  it('once caught up, upserts the exact row; a re-run gives the same row', async () => {
    await addScore(60, 52, 1);
    await pool.query(`UPDATE sessions SET last_score_at = $1 WHERE session_id = 's1'`, [at(60)]);
    await writeSessionReport(pool, ended, { finalAttempt: false });
    const read = async () =>
      (await pool.query(`SELECT * FROM session_reports`)).rows.map(({ generated_at, ...r }) => {
        expect(generated_at).toBeInstanceOf(Date);
        return r;
      });
    const first = await read();
    expect(first).toEqual([
      {
        session_id: 's1',
        tenant_id: 'acme',
        driver_id: 'd1',
        vehicle_id: 'v1',
        started_at: new Date(at(0)),
        ended_at: new Date(at(60)),
        duration_s: 60,
        model_version: 'fatigue-v1',
        score_avg: 46.25,
        score_max: 52,
        level_max: 1,
        level1_s: 5,
        level2_s: 0,
        alert_count: 1,
        microsleep_count: 0,
        report: {
          version: 1,
          session_id: 's1',
          tenant_id: 'acme',
          driver_id: 'd1',
          vehicle_id: 'v1',
          started_at: '2026-01-01T08:00:00.000Z',
          ended_at: '2026-01-01T08:01:00.000Z',
          end_reason: 'COMPLETED',
          duration_s: 60,
          complete: true,
          pending: [],
          model_versions: ['fatigue-v1'],
          scores: { count: 2, mean: 46.25, max: 52, level_max: 1, seconds_at_level: { '0': 5, '1': 5, '2': 0 } },
          alerts: {
            count: 1,
            by_reason: { drowsy: 1, severe: 0, microsleep: 0, face_lost: 0 },
            level_max: 1,
            escalations: 0,
            acknowledged: 0,
            items: [
              {
                alert_id: 'al1',
                reason: 'drowsy',
                level: 1,
                status: 'cleared',
                raised_at: '2026-01-01T08:01:00.000Z',
                escalations: 0,
                acknowledged_at: null,
                cleared_at: '2026-01-01T08:01:00.000Z',
                clear_reason: 'session_ended',
              },
            ],
          },
          microsleep_count: 0,
          data_quality: {
            eeg: { received: 0, expected: 600, ratio: 0, devices: 0, largest_gap_s: 60 },
            face: { received: 3, expected: 900, ratio: 0.003, devices: 1, largest_gap_s: 48 },
            vehicle: { received: 0, expected: 600, ratio: 0, devices: 0, largest_gap_s: 60 },
            game_events: 1,
          },
          trend: [
            { minute: '2026-01-01T08:00:00.000Z', score_avg: 40.5, score_max: 40.5, level_max: 0, scores: 1 },
            { minute: '2026-01-01T08:01:00.000Z', score_avg: 52, score_max: 52, level_max: 1, scores: 1 },
          ],
        },
      },
    ]);
    await writeSessionReport(pool, ended, { finalAttempt: false });
    expect(await read()).toEqual(first);
  });
});
