import type { Pool } from 'pg';
import Redis from 'ioredis';
import { eventually, processEnv, testConfig } from '../test/support/env';
import { buildAlert } from '../test/support/build';
import { pipelineFixture, type PipelineFixture } from '../test/support/pipeline';
import { readAll } from '../test/support/stack';
import { processGroup, type VigilProcessGroup } from '../test/support/processes';
import type { TopicKey } from '../schemas/catalogue';
import type { AlertEvent, FatigueScored } from '../schemas/types';
import { f32 } from './redis/model';
import { sessionIdOf } from '../producers/simulator/session';
import { redisKeys } from '../core/redis-keys';
import { alertIdOf } from '../processors/fatigue/ids';

/**
 * Exactly-once under kill -9, as separate processes: a real-time simulator run feeds the fatigue
 * processor (scores) and `vigil project`; alert life cycles are published to the alerts topic beside
 * the processor's output (one event twice); the projection worker is SIGKILLed three times while it
 * is applying batches (each time after it made progress since its restart, plus a random 0.3-2.5 s),
 * and restarted. Once everything is caught up, every PostgreSQL read model holds exactly one row per
 * distinct event of its topic (nothing lost, nothing twice), the sessions' counters equal the
 * per-session counts of the topics, and Redis holds each session's newest score.
 */
const SESSIONS = 6;
const SECONDS = 40;
const KILLS = 3;
/**
 * The simulated sessions' start: near now, whole minutes. The processor's input topics stamp records
 * with the broker's append time and it refuses a ts more than 24 h behind it (or 60 s ahead).
 */
const START = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;

/** Telemetry tables keyed by event id, with their topic and the session counter they feed. */
const telemetry = [
  { topic: 'eeg', table: 'eeg_frames', counter: 'eeg_frame_count' },
  { topic: 'face', table: 'face_frames', counter: 'face_frame_count' },
  { topic: 'vehicle', table: 'vehicle_frames', counter: 'vehicle_frame_count' },
  { topic: 'game', table: 'game_events', counter: 'game_event_count' },
] as const;

type Envelope = { event_id: string; tenant_id: string; session_id: string; ts: number };

describe('projection worker: exactly once across kill -9', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let pool: Pool;
  let redis: Redis;
  let vigil: VigilProcessGroup;

  beforeAll(async () => {
    // Topics (3 partitions) and schemas under a unique prefix, a migrated database, a publisher.
    fx = await pipelineFixture(config, { poolMax: 2 });
    pool = fx.pool;
    vigil = processGroup(processEnv(config, { VIGIL_DATABASE_URL: fx.databaseUrl }));
    redis = new Redis(config.redisUrl);
  });

  afterAll(async () => {
    await vigil?.stopAll('SIGKILL');
    if (redis) {
      const keys = await redis.keys(`${config.topicPrefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
    await fx?.close();
  });

  const countOf = async (table: string) =>
    Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);

  it('stores every event once and counts it once, however often the worker is killed', async () => {
    const processor = vigil.start(['process']);
    let worker = vigil.start(['project']);
    const { publisher } = fx;
    const at = (s: number) => START + s * 1000;
    const alertEvents = [0, 1, 2].flatMap((i) => {
      const session = { tenant_id: 'demo', session_id: sessionIdOf(23, i) };
      const alert_id = alertIdOf('spec', session.session_id, 'microsleep', at(10 + i));
      const ts = (step: number) => at(10 + i + step * 5);
      return [
        buildAlert('AlertRaised', { ...session, ts: ts(0), alert_id, level: 2, reason: 'microsleep', score: null }),
        buildAlert('AlertEscalated', { ...session, ts: ts(1), alert_id, level: 2, count: 1 }),
        buildAlert('AlertAcknowledged', { ...session, ts: ts(2), alert_id }),
        buildAlert('AlertCleared', { ...session, ts: ts(3), alert_id }),
      ];
    });
    const sim = vigil.start([
      'simulate',
      ...['--sessions', String(SESSIONS), '--duration', `${SECONDS}s`, '--speed', 'realtime'],
      ...['--seed', '23', '--profile', 'severe', '--start', new Date(START).toISOString()],
    ]);
    // Kill the worker while it applies batches: after it moved the EEG rows on since it was
    // (re)started (a restart first waits for the dead member's session to expire), plus a random delay.
    const atKill: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const before = atKill.at(-1) ?? 0;
      await eventually(
        () => countOf('eeg_frames'),
        (n) => n > before,
        45_000,
      );
      await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 2_200)));
      atKill.push(await countOf('eeg_frames'));
      worker.child.kill('SIGKILL');
      expect(await worker.exited).toBe(128);
      worker = vigil.start(['project']);
      // Alert life cycles published beside the processor's output while the worker restarts (40 s
      // sessions rarely raise one themselves), one event twice as a producer retry would.
      await publisher.publish('alerts', alertEvents.slice(k * 4, k * 4 + 4));
    }
    await publisher.publish('alerts', [alertEvents[0]!]);
    expect(await sim.exited).toBe(0);

    // The processor has read every input to its end (its offsets go with its transactions); stopping it
    // gracefully then leaves the scores and alerts topics final.
    const inputs: TopicKey[] = ['sessions', 'eeg', 'face', 'vehicle', 'game'];
    const processorLag = async () => {
      const committed = await fx.admin.fetchOffsets({
        groupId: `${config.topicPrefix}.processor.fatigue`,
        topics: inputs.map((k) => fx.topics[k]),
      });
      const ends = await Promise.all(inputs.map((k) => fx.admin.fetchTopicOffsets(fx.topics[k])));
      return Object.fromEntries(
        inputs.map((k, i) => {
          const at = committed.find((t) => t.topic === fx.topics[k])!.partitions;
          const lag = ends[i]!.map((e) => Number(e.high) - Number(at.find((p) => p.partition === e.partition)?.offset));
          return [k, lag];
        }),
      );
    };
    const idle = Object.fromEntries(inputs.map((k) => [k, [0, 0, 0]]));
    const lag = await eventually(processorLag, (l) => JSON.stringify(l) === JSON.stringify(idle), 60_000);
    if (JSON.stringify(lag) !== JSON.stringify(idle))
      process.stderr.write(`PROCESSOR OUTPUT\n${processor.output().slice(-6000)}\n`);
    expect(lag).toEqual(idle);
    await publisher.flush(); // every alert event in its topic (the fixture disconnects it at the end)
    processor.child.kill('SIGTERM');
    expect(await processor.exited).toBe(0);

    // What the topics hold, decoded.
    const decoded = async <T>(key: TopicKey): Promise<T[]> =>
      Promise.all(
        (await readAll(fx.kafka, fx.topics[key])).map(async (r) => (await fx.serde.decode<T>(r.value)).value),
      );
    const events = Object.fromEntries(
      await Promise.all(
        (['sessions', 'eeg', 'face', 'vehicle', 'game', 'scores', 'alerts'] as const).map(
          async (k) => [k, await decoded<Envelope>(k)] as const,
        ),
      ),
    ) as Record<'sessions' | 'eeg' | 'face' | 'vehicle' | 'game' | 'scores' | 'alerts', Envelope[]>;
    const scores = events.scores as unknown as FatigueScored[];
    const alerts = events.alerts as unknown as AlertEvent[];
    const distinct = (xs: string[]) => new Set(xs).size;
    const sessionIds = [...new Set(events.sessions.map((e) => e.session_id))].sort();
    expect(sessionIds).toHaveLength(SESSIONS);
    expect(distinct(events.eeg.map((e) => e.event_id))).toBe(SESSIONS * SECONDS * 10);
    expect(scores.length).toBeGreaterThan(SESSIONS * 3);
    expect(alerts.length).toBeGreaterThanOrEqual(alertEvents.length + 1);

    // Caught up: every table holds as many rows as its topic has distinct events. (Distinct, not all:
    // the processor has been seen to write a score twice, same event id, in two transactions; the
    // read models must, and do, store and count it once.)
    const expected: Record<string, number> = {
      sessions: sessionIds.length,
      fatigue_scores: distinct(scores.map((s) => `${s.session_id}|${s.ts}`)),
      alert_events: distinct(alerts.map((a) => a.event_id)),
      alerts: distinct(alerts.map((a) => a.event.alert_id)),
    };
    for (const t of telemetry) expected[t.table] = distinct(events[t.topic].map((e) => e.event_id));
    const counts = async () =>
      Object.fromEntries(await Promise.all(Object.keys(expected).map(async (t) => [t, await countOf(t)] as const)));
    await eventually(counts, (c) => Object.keys(expected).every((t) => c[t] === expected[t]), 60_000);
    // A little longer: a late duplicate would show as a count above the topic's.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await counts()).toEqual(expected);
    for (const n of atKill) expect(n).toBeLessThan(expected.eeg_frames!); // each kill was mid-stream

    // No duplicate under any key, and exactly the topic's events.
    for (const t of telemetry) {
      const { rows } = await pool.query<{ event_id: string }>(`SELECT event_id FROM ${t.table}`);
      const stored = rows.map((r) => r.event_id);
      expect(distinct(stored)).toBe(stored.length);
      const wanted = new Set(events[t.topic].map((e) => e.event_id));
      expect(stored.filter((id) => !wanted.has(id))).toEqual([]);
    }
    const dupScores = await pool.query(
      `SELECT session_id, ts FROM fatigue_scores GROUP BY session_id, ts HAVING count(*) > 1`,
    );
    expect(dupScores.rows).toEqual([]);
    const dupAlerts = await pool.query(`SELECT event_id FROM alert_events GROUP BY event_id HAVING count(*) > 1`);
    expect(dupAlerts.rows).toEqual([]);

    // The sessions' counters equal the per-session counts of the topics.
    const perSession = (xs: { session_id: string }[], id: string) => xs.filter((x) => x.session_id === id).length;
    const { rows: stored } = await pool.query<Record<string, string | number>>(
      `SELECT session_id, status, eeg_frame_count::int, face_frame_count::int, vehicle_frame_count::int,
              game_event_count::int, score_count::int, alert_count
       FROM sessions ORDER BY session_id COLLATE "C"`,
    );
    expect(stored).toEqual(
      sessionIds.map((id) => ({
        session_id: id,
        status: 'ended',
        eeg_frame_count: perSession(events.eeg, id),
        face_frame_count: perSession(events.face, id),
        vehicle_frame_count: perSession(events.vehicle, id),
        game_event_count: perSession(events.game, id),
        score_count: distinct(scores.filter((s) => s.session_id === id).map((s) => String(s.ts))),
        alert_count: distinct(alerts.filter((a) => a.session_id === id).map((a) => a.event.alert_id)),
      })),
    );

    // Redis: each session's latest score is the topic's newest score of that session.
    const latest = await eventually(
      () =>
        Promise.all(
          sessionIds.map((id) =>
            redis.hmget(
              redisKeys(config.topicPrefix).latest(events.sessions.find((e) => e.session_id === id)!.tenant_id, id),
              'ts',
              'score',
              'event_id',
            ),
          ),
        ),
      (ls) =>
        ls.every(
          (l, i) => l[0] === String(Math.max(...scores.filter((s) => s.session_id === sessionIds[i]).map((s) => s.ts))),
        ),
      30_000,
    );
    expect(latest).toEqual(
      sessionIds.map((id) => {
        const newest = scores.filter((s) => s.session_id === id).sort((a, b) => b.ts - a.ts)[0]!;
        return [String(newest.ts), String(f32(newest.score)), newest.event_id];
      }),
    );
    expect(worker.child.exitCode).toBeNull();
  });
});
