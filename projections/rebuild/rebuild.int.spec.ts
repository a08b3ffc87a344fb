import type { Pool } from 'pg';
import { eventually, testConfig, testLogger } from '../../test/support/env';
import { pipelineFixture, projectionRunner, type PipelineFixture } from '../../test/support/pipeline';
import type { Publisher } from '../../producers/publisher';
import { sessionEvents } from '../../producers/simulator/session';
import { alertIdOf, uuidFrom } from '../../processors/fatigue/ids';
import type { TopicKey } from '../../schemas/catalogue';
import type { AlertEvent, AlertEventKind } from '../../schemas/types';
import { buildScore } from '../../test/support/build';
import type { ProjectionRunner } from '../runner';
import { rebuildProjection, type RebuildProgress } from './rebuild';
import { projectionPositions } from './positions';
import { databasePath, onTimescale } from '../../test/support/database-path';

/**
 * `rebuildProjection` against real Kafka, registry and PostgreSQL, with every live projection running
 * the whole time: a rebuilt model's tables and session columns hash the same as before (row by row,
 * without the wall-clock `updated_at`); corrupted live rows are repaired while the columns of other
 * models are left alone; reads during the swap never fail nor see a half state; events published
 * during a rebuild end up applied exactly once; `--from` replays only the newer part.
 * On both paths: plain PostgreSQL swaps most tables by rename; TimescaleDB swaps every hypertable by
 * copy (a hypertable's chunks and its continuous aggregate cannot move), so the path decides the
 * `swapped` figures and how a reader during the swap is served.
 */
describe(`projections rebuild (Kafka → shadow schema → swap), ${databasePath()} path`, () => {
  /** How a table that is a hypertable on the TimescaleDB path is swapped in. */
  const hyper = onTimescale() ? 'copy' : 'rename';
  const config = testConfig();
  const log = testLogger();
  let fx: PipelineFixture;
  let pool: Pool;
  let publisher: Publisher;
  let runners: ProjectionRunner[] = [];
  const models = ['sessions', 'eeg', 'face', 'vehicle', 'game', 'scores', 'alerts'];

  const startTs = Date.UTC(2026, 0, 1, 8);
  const plan = (index: number, startAt = startTs) => ({
    seed: 11,
    index,
    tenantId: 'tenant-r',
    startTs: startAt,
    durationMs: 20_000,
    profile: 'drowsy' as const,
    modalities: ['eeg', 'face', 'vehicle', 'game'] as const,
  });
  const simulated = [0, 1, 2].flatMap((i) => [...sessionEvents(plan(i))]);
  const sessionId = simulated[0]!.event.session_id;
  const at = (s: number) => startTs + s * 1000;

  const score = (endS: number, value: number, level: number) =>
    buildScore({
      tenant_id: 'tenant-r',
      session_id: sessionId,
      ts: at(endS),
      score: value,
      level,
      components: { ocular: 0.75, driving: 0.5, eeg: null, reaction: 0.25, yawn: 0 },
      features: { perclos: 0.125, long_blink_share: 0.5, sdlp_m: 0.25, lane_departures: 1, lapses: 2 },
    });
  const scores = [score(10, 42.5, 0), score(15, 71.25, 2), score(20, 60.5, 2), score(5, 80, 2)];
  const microsleep = alertIdOf('fatigue-v1', sessionId, 'microsleep', at(12));
  const alert = (s: number, event: AlertEventKind): AlertEvent => ({
    event_id: uuidFrom('rebuild-spec', 'alert', event.alert_id, event.type),
    tenant_id: 'tenant-r',
    session_id: sessionId,
    ts: at(s),
    event,
  });
  const alerts = [
    alert(12, { type: 'AlertRaised', alert_id: microsleep, level: 2, reason: 'microsleep', score: null }),
    alert(14, { type: 'AlertAcknowledged', alert_id: microsleep, acknowledged_by: 'ops@fleet' }),
    alert(18, { type: 'AlertCleared', alert_id: microsleep, reason: 'recovered' }),
  ];

  const keys: Record<string, string> = {
    eeg_frames: 'event_id, ts',
    face_frames: 'event_id, ts',
    vehicle_frames: 'event_id, ts',
    game_events: 'event_id, ts',
    fatigue_scores: 'session_id, ts',
    alert_events: 'event_id, ts',
    alerts: 'alert_id',
    sessions: 'session_id',
  };
  /** md5 over every row in primary-key order, without updated_at (wall clock of the last write). */
  async function checksums(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [t, key] of Object.entries(keys)) {
      const { rows } = await pool.query<{ h: string; n: number }>(
        `SELECT md5(string_agg((to_jsonb(t) - 'updated_at')::text, '|' ORDER BY ${key})) AS h, count(*)::int AS n FROM ${t} t`,
      );
      out[t] = `${rows[0]!.n}:${rows[0]!.h}`;
    }
    return out;
  }

  async function caughtUp(): Promise<boolean> {
    const rows = await projectionPositions({ kafka: fx.kafka, pool, topics: fx.topics });
    return rows.filter((r) => models.includes(r.model)).every((r) => r.lag === '0');
  }

  const rebuild = (name: string, from?: number, onProgress?: (p: RebuildProgress) => void) =>
    rebuildProjection({ kafka: fx.kafka, pool, serde: fx.serde, topics: fx.topics, log }, name, { from, onProgress });

  const indexNames = async (table: string) =>
    (
      await pool.query<{ indexname: string }>(
        `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 ORDER BY 1`,
        [table],
      )
    ).rows.map((r) => r.indexname);

  let reference: Record<string, string>;

  beforeAll(async () => {
    fx = await pipelineFixture(config, { poolMax: 12, ignoreIdleClientErrors: true });
    ({ pool, publisher } = fx);
    for (const topic of ['sessions', 'eeg', 'face', 'vehicle', 'game'] as TopicKey[]) {
      const events = simulated.filter((e) => e.topic === topic).map((e) => e.event);
      await publisher.publish(topic as 'eeg', events as never);
    }
    await publisher.publish('scores', scores);
    await publisher.publish('alerts', alerts);
    await publisher.flush();
    runners = models.map((m) => projectionRunner(fx, m, config.topicPrefix));
    await Promise.all(runners.map((r) => r.start()));
    expect(await eventually(caughtUp, (v) => v, 60_000)).toBe(true);
    reference = await checksums();
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await fx?.close();
  });

  it('rebuilds eeg to the same rows, repairs corrupted ones and leaves other models’ columns alone', async () => {
    const indexesBefore = await indexNames('eeg_frames');
    await pool.query(`UPDATE eeg_frames SET channels = '[]' WHERE ctid IN (SELECT ctid FROM eeg_frames LIMIT 3)`);
    await pool.query(`DELETE FROM eeg_frames WHERE ctid IN (SELECT ctid FROM eeg_frames LIMIT 2)`);
    await pool.query(
      `UPDATE sessions SET eeg_frame_count = 999, first_ts = NULL, face_frame_count = 7 WHERE session_id = $1`,
      [sessionId],
    );
    // A session only a corrupted write knows of: the rebuild resets its EEG columns to the defaults.
    await pool.query(`INSERT INTO sessions (session_id, tenant_id, eeg_frame_count) VALUES ('ghost', 'tenant-r', 5)`);
    expect((await checksums()).eeg_frames).not.toBe(reference.eeg_frames);

    const phases: string[] = [];
    const r = await rebuild('eeg', undefined, (p) => phases.push(p.phase));
    expect(r.swapped).toEqual({ eeg_frames: hyper, sessions: 'upsert' });
    expect(r.applied).toBe(simulated.filter((e) => e.topic === 'eeg').length);
    expect(phases[0]).toBe('prepare');
    expect(phases.slice(-2)).toEqual(['swap', 'done']);

    const after = await checksums();
    expect(after.eeg_frames).toBe(reference.eeg_frames);
    // face_frame_count is the face model's: still as corrupted; the EEG columns are right again.
    const s = await pool.query(
      `SELECT eeg_frame_count::int AS eeg, first_ts, face_frame_count::int AS face FROM sessions WHERE session_id = $1`,
      [sessionId],
    );
    const eegOf = simulated.filter((e) => e.topic === 'eeg' && e.event.session_id === sessionId);
    expect(s.rows[0]).toEqual({
      eeg: eegOf.length,
      first_ts: new Date(Math.min(...eegOf.map((e) => e.event.ts))),
      face: 7,
    });
    const ghost = await pool.query(`SELECT eeg_frame_count::int AS n FROM sessions WHERE session_id = 'ghost'`);
    expect(ghost.rows[0]).toEqual({ n: 0 });
    await pool.query(`DELETE FROM sessions WHERE session_id = 'ghost'`);
    await rebuild('face');
    expect(await checksums()).toEqual(reference);
    expect(await indexNames('eeg_frames')).toEqual(indexesBefore);
    const left = await pool.query(
      `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname LIKE 'vigil_rebuild_%') AS schemas,
              (SELECT count(*)::int FROM projection_checkpoints WHERE projection LIKE '%@rebuild_%') AS checkpoints`,
    );
    expect(left.rows[0]).toEqual({ schemas: 0, checkpoints: 0 });
  });

  it('drops what an interrupted rebuild of the same model left, and nothing of other models', async () => {
    await pool.query(`CREATE SCHEMA vigil_rebuild_eeg_stale1; CREATE TABLE vigil_rebuild_eeg_stale1.x (a int)`);
    await pool.query(`CREATE SCHEMA vigil_rebuild_face_other1`);
    await pool.query(
      `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset)
       VALUES ('eeg@rebuild_stale1', 't', 0, 5), ('face@rebuild_other1', 't', 0, 5)`,
    );
    await rebuild('eeg');
    const left = await pool.query(
      `SELECT (SELECT array_agg(nspname::text ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 'vigil_rebuild_%') AS schemas,
              (SELECT array_agg(projection ORDER BY projection) FROM projection_checkpoints WHERE projection LIKE '%@rebuild_%') AS checkpoints`,
    );
    expect(left.rows[0]).toEqual({ schemas: ['vigil_rebuild_face_other1'], checkpoints: ['face@rebuild_other1'] });
    await pool.query(
      `DROP SCHEMA vigil_rebuild_face_other1; DELETE FROM projection_checkpoints WHERE projection = 'face@rebuild_other1'`,
    );
    expect(await checksums()).toEqual(reference);
  });

  it('keeps reads answering during the swap and applies events published meanwhile exactly once', async () => {
    const more = [3, 4].flatMap((i) => [...sessionEvents(plan(i, startTs + 60_000))]).filter((e) => e.topic === 'eeg');
    const total = simulated.filter((e) => e.topic === 'eeg').length + more.length;
    let reading = true;
    const errors: unknown[] = [];
    const seen: number[] = [];
    const reader = (async () => {
      while (reading) {
        try {
          const { rows } = await pool.query<{ n: number; c: number }>(
            `SELECT (SELECT count(*)::int FROM eeg_frames) AS n, (SELECT sum(eeg_frame_count)::int FROM sessions) AS c`,
          );
          seen.push(rows[0]!.n);
        } catch (err) {
          errors.push(err);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const publishing = (async () => {
      for (let i = 0; i < more.length; i += 50) {
        await publisher.publish('eeg', more.slice(i, i + 50).map((e) => e.event) as never);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let r: Awaited<ReturnType<typeof rebuild>>;
    try {
      r = await rebuild('eeg');
      await publishing;
      await eventually(caughtUp, (v) => v, 30_000);
    } finally {
      reading = false;
      await reader;
    }

    expect(errors).toEqual([]);
    expect(seen.length).toBeGreaterThan(10);
    // Never fewer rows than before the rebuild, never more than exist: no half state.
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(simulated.filter((e) => e.topic === 'eeg').length);
    expect(Math.max(...seen)).toBeLessThanOrEqual(total);
    expect(r.applied).toBeGreaterThanOrEqual(simulated.filter((e) => e.topic === 'eeg').length);
    const counts = await pool.query(
      `SELECT (SELECT count(*)::int FROM eeg_frames) AS rows, (SELECT count(DISTINCT event_id)::int FROM eeg_frames) AS ids,
              (SELECT sum(eeg_frame_count)::int FROM sessions) AS counted`,
    );
    expect(counts.rows[0]).toEqual({ rows: total, ids: total, counted: total });
    reference = await checksums();
  });

  if (!onTimescale()) {
    it('lets a reader queued behind the swap read the new table: no error, no half state', async () => {
      const rowsNow = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM eeg_frames')).rows[0]!.n;
      const oidOf = async () =>
        (await pool.query<{ o: number }>(`SELECT 'eeg_frames'::regclass::oid::int AS o`)).rows[0]!.o;
      const oldOid = await oidOf();
      const waiting = async (like: string) =>
        (
          await pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`,
            [like],
          )
        ).rows[0]!.n;
      // An open transaction that read eeg_frames holds its lock: the swap's DROP has to wait for it.
      const holder = await pool.connect();
      let rebuilding: ReturnType<typeof rebuild> | undefined;
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT count(*) FROM eeg_frames');
        rebuilding = rebuild('eeg');
        rebuilding.catch(() => {});
        expect(
          await eventually(
            () => waiting('DROP TABLE%'),
            (n) => n === 1,
          ),
        ).toBe(1);
        const reading = pool.query<{ n: number }>('SELECT /* queued reader */ count(*)::int AS n FROM eeg_frames');
        expect(
          await eventually(
            () => waiting('%queued reader%'),
            (n) => n === 1,
          ),
        ).toBe(1);
        await holder.query('COMMIT');
        const [r, read] = await Promise.all([rebuilding, reading]);
        expect(r.swapped).toEqual({ eeg_frames: 'rename', sessions: 'upsert' });
        expect(read.rows[0]!.n).toBe(rowsNow);
        expect(await oidOf()).not.toBe(oldOid);
      } finally {
        await holder.query('ROLLBACK').catch(() => {});
        holder.release();
        await rebuilding?.catch(() => {});
      }
      expect(await checksums()).toEqual(reference);
    });
  } else {
    it('lets a reader whose snapshot predates the copy swap read the old rows, never 0; the hypertable stays', async () => {
      const rowsNow = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM eeg_frames')).rows[0]!.n;
      const oidOf = async () =>
        (await pool.query<{ o: number }>(`SELECT 'eeg_frames'::regclass::oid::int AS o`)).rows[0]!.o;
      const oldOid = await oidOf();
      // A snapshot taken before the swap, without a lock on eeg_frames (so nothing makes the swap wait).
      // With TRUNCATE + INSERT it read 0 rows here: TRUNCATE is not MVCC-safe.
      const reader = await pool.connect();
      try {
        await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await reader.query('SELECT 1');
        const r = await rebuild('eeg');
        expect(r.swapped).toEqual({ eeg_frames: 'copy', sessions: 'upsert' });
        const old = await reader.query<{ n: number }>('SELECT count(*)::int AS n FROM eeg_frames');
        expect(old.rows[0]!.n).toBe(rowsNow);
        await reader.query('COMMIT');
      } finally {
        await reader.query('ROLLBACK').catch(() => {});
        reader.release();
      }
      const now = await pool.query<{ n: number; hyper: number }>(
        `SELECT (SELECT count(*)::int FROM eeg_frames) AS n,
                (SELECT count(*)::int FROM timescaledb_information.hypertables WHERE hypertable_name = 'eeg_frames') AS hyper`,
      );
      expect(now.rows[0]).toEqual({ n: rowsNow, hyper: 1 });
      expect(await oidOf()).toBe(oldOid);
      expect(await checksums()).toEqual(reference);
    });
  }

  it(`rebuilds scores by copy (a view depends on fatigue_scores) and alerts (alert_events by ${hyper}), repairing both`, async () => {
    await pool.query(`UPDATE fatigue_scores SET score = 0 WHERE ts = $1`, [new Date(at(15))]);
    await pool.query(`UPDATE sessions SET max_score = 1, score_count = 0 WHERE session_id = $1`, [sessionId]);
    await pool.query(`UPDATE alerts SET status = 'active', cleared_at = NULL`);
    await pool.query(`UPDATE sessions SET open_alert_count = 4 WHERE session_id = $1`, [sessionId]);
    const scoresRebuilt = await rebuild('scores');
    expect(scoresRebuilt.swapped).toEqual({ fatigue_scores: 'copy', sessions: 'upsert' });
    const alertsRebuilt = await rebuild('alerts');
    expect(alertsRebuilt.swapped).toEqual({ alert_events: hyper, alerts: 'rename', sessions: 'upsert' });
    expect(await checksums()).toEqual(reference);
    const trend = await pool.query(`SELECT max(score_max)::float8 AS m FROM fatigue_scores_1m`);
    expect(trend.rows[0]).toEqual({ m: 80 });
  });

  it('with --from keeps the older live rows and replays only the newer ones', async () => {
    const from = at(10);
    await pool.query(`UPDATE face_frames SET eye_closure = -1 WHERE ts >= $1`, [new Date(from)]);
    await pool.query(`UPDATE face_frames SET mouth_open = -1 WHERE ts < $1`, [new Date(from)]);
    await pool.query(`UPDATE sessions SET face_frame_count = 0`);
    const r = await rebuild('face', from);
    const faceEvents = simulated.filter((e) => e.topic === 'face');
    expect(r.applied).toBe(faceEvents.length); // offsets-for-times: record times are all after --from
    const rows = await pool.query(
      `SELECT count(*) FILTER (WHERE eye_closure = -1)::int AS newer, count(*) FILTER (WHERE mouth_open = -1)::int AS older,
              (SELECT sum(face_frame_count)::int FROM sessions) AS counted
       FROM face_frames`,
    );
    // Newer rows repaired; older rows kept as they were (the point of --from); counters right.
    expect(rows.rows[0]).toEqual({
      newer: 0,
      older: faceEvents.filter((e) => e.event.ts < from).length,
      counted: faceEvents.length,
    });
  });

  it('refuses an unknown model', async () => {
    await expect(rebuild('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
