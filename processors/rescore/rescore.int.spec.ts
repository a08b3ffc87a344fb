import { testConfig, testLogger, eventually } from '../../test/support/env';
import { pipelineFixture, projectionRunner, type PipelineFixture } from '../../test/support/pipeline';
import { readAll, type KafkaFixture } from '../../test/support/stack';
import { runSimulation } from '../../producers/simulator/run';
import type { AlertEvent, FatigueScored } from '../../schemas/types';
import { ProcessorRunner } from '../runner';
import { fatigueProcessor } from '../fatigue/keyed-processor';
import { rescore, type RescoreResult } from './rescore';
import { formatComparison } from './summary';
import { decodeSnapshot } from '../snapshot-codec';

/**
 * `vigil rescore` against the real broker and registry: simulated sessions scored by the live
 * processor, then re-scored into the what-if topics with the live model (same output as the live
 * processor), with the sensitive model (same windows, other scores), rerun (same bytes), and
 * projected into fatigue_scores_whatif keyed by model version.
 */
const config = testConfig();
const log = testLogger();
/** Near now (whole minutes): the input topics use LogAppendTime and the processor refuses a ts 24 h behind it. */
const START = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
const DURATION = 3 * 60_000;
const FROM = START - 60_000;
const TO = START + 10 * 60_000;

type Values<T> = Record<string, T[]>;

/** Per session (key), the decoded values of a topic and their value bytes, in offset order. */
async function perSession<T>(fx: KafkaFixture, topic: string): Promise<{ values: Values<T>; bytes: Values<string> }> {
  const records = await readAll(fx.kafka, topic);
  records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  const values: Values<T> = {};
  const bytes: Values<string> = {};
  for (const r of records) {
    const key = r.key!.toString();
    (values[key] ??= []).push((await fx.serde.decode<T>(r.value)).value);
    (bytes[key] ??= []).push(r.value!.subarray(5).toString('hex')); // the Avro body, after magic byte and schema id
  }
  return { values, bytes };
}

describe('vigil rescore', () => {
  let fx: PipelineFixture;
  let sessionIds: string[];
  let live: { scores: Values<FatigueScored>; alerts: Values<AlertEvent> };
  const runs: Record<string, RescoreResult> = {};
  const deps = () => ({ kafka: fx.kafka, serde: fx.serde, topics: fx.topics, log, idPrefix: config.topicPrefix });

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    ({ sessionIds } = await runSimulation(fx.publisher, {
      sessions: 2,
      durationMs: DURATION,
      speed: 'max',
      seed: 5,
      profile: 'severe',
      tenantId: 'tenant-r',
      startTs: START,
    }));

    // The live processor over the same input, until both sessions ended (their changelog entries keep
    // only the owner: no state).
    const runner = new ProcessorRunner(fatigueProcessor, {
      kafka: fx.kafka,
      serde: fx.serde,
      topics: fx.topics,
      log,
      groupPrefix: config.topicPrefix,
    });
    await runner.start();
    const ended = await eventually(
      async () => {
        const c: Record<string, string> = {};
        for (const r of await readAll(fx.kafka, fx.topics.changelog)) {
          const open = r.value !== null && decodeSnapshot(r.value).state !== undefined;
          c[r.key!.toString()] = open ? 'open' : 'ended';
        }
        return c;
      },
      (c) => sessionIds.every((s) => c[s] === 'ended'),
      60_000,
    );
    await runner.stop();
    expect(sessionIds.map((s) => ended[s])).toEqual(['ended', 'ended']);
    live = {
      scores: (await perSession<FatigueScored>(fx, fx.topics.scores)).values,
      alerts: (await perSession<AlertEvent>(fx, fx.topics.alerts)).values,
    };
  }, 120_000);
  afterAll(() => fx?.close());

  it('with the live model, writes to the what-if topics exactly what the live processor wrote', async () => {
    runs.v1 = await rescore(deps(), { from: FROM, to: TO, model: 'fatigue-v1' });
    if (process.env.VIGIL_TEST_PRINT) process.stdout.write(`${formatComparison(runs.v1.comparison)}\n`);
    const scores = await perSession<FatigueScored>(fx, fx.topics.scoresWhatIf);
    const alerts = await perSession<AlertEvent>(fx, fx.topics.alertsWhatIf);
    for (const s of sessionIds) expect(live.scores[s]!.length).toBeGreaterThan(30); // 3 min, a score every 5 s
    expect(Object.keys(live.alerts).length).toBeGreaterThan(0); // severe sessions raise alerts
    expect(scores.values).toEqual(live.scores);
    expect(alerts.values).toEqual(live.alerts);
    const r = runs.v1;
    expect(r.produced).toEqual({
      scores: sessionIds.reduce((n, s) => n + live.scores[s]!.length, 0),
      alerts: sessionIds.reduce((n, s) => n + (live.alerts[s]?.length ?? 0), 0),
    });
    expect([r.late, r.duplicates, r.undecodable, r.refused, r.tenantMismatch, r.aborted]).toEqual([
      0,
      0,
      0,
      0,
      0,
      false,
    ]);
    expect(r.kept).toBe(r.read); // every published event is in the range
    // The comparison: the same model on both sides agrees everywhere.
    expect(r.comparison.map((c) => c.session_id)).toEqual([...sessionIds].sort());
    for (const c of r.comparison) {
      expect(c.whatIf).toEqual(c.live);
      expect([c.meanDelta, c.windowDelta]).toEqual([0, 0]);
      expect(c.live.windows).toBe(live.scores[c.session_id]!.length);
    }
  }, 60_000);

  it('with the sensitive model, scores the same windows differently; a rerun writes the same bytes', async () => {
    runs.sensitive = await rescore(deps(), { from: FROM, to: TO, model: 'fatigue-v1-sensitive' });
    runs.rerun = await rescore(deps(), { from: FROM, to: TO, model: 'fatigue-v1-sensitive' });
    if (process.env.VIGIL_TEST_PRINT) process.stdout.write(`${formatComparison(runs.sensitive.comparison)}\n`);
    const scores = await perSession<FatigueScored>(fx, fx.topics.scoresWhatIf);
    for (const s of sessionIds) {
      const sensitive = scores.values[s]!.filter((e) => e.model_version === 'fatigue-v1-sensitive');
      const n = live.scores[s]!.length;
      expect(sensitive).toHaveLength(2 * n); // two runs
      expect(sensitive.slice(0, n).map((e) => e.window_end_ts)).toEqual(live.scores[s]!.map((e) => e.window_end_ts));
      expect(sensitive.slice(0, n).map((e) => e.score)).not.toEqual(live.scores[s]!.map((e) => e.score));
      // The rerun: byte-identical values, in the same order (after the first run's, fatigue-v1's first).
      const bytes = scores.bytes[s]!.slice(n);
      expect(bytes.slice(n)).toEqual(bytes.slice(0, n));
    }
    const { bytes: alertBytes } = await perSession<AlertEvent>(fx, fx.topics.alertsWhatIf);
    for (const s of sessionIds) {
      const v1 = live.alerts[s]?.length ?? 0;
      const rest = (alertBytes[s] ?? []).slice(v1);
      expect(rest.length % 2).toBe(0);
      expect(rest.slice(rest.length / 2)).toEqual(rest.slice(0, rest.length / 2));
    }
    expect(runs.rerun.produced).toEqual(runs.sensitive!.produced);
    expect(runs.rerun.comparison).toEqual(runs.sensitive!.comparison);
    for (const c of runs.sensitive!.comparison) {
      expect(c.whatIf.model).toBe('fatigue-v1-sensitive');
      expect(c.live.model).toBe('fatigue-v1');
      expect(c.windowDelta).toBe(0);
      expect(c.meanDelta).toBeGreaterThan(0);
    }
  }, 60_000);

  it('rescores one session alone, reading only its partition, with the same output for it', async () => {
    const one = sessionIds[0]!;
    const r = await rescore(deps(), { from: FROM, to: TO, model: 'fatigue-v1-sensitive', session: one });
    expect(r.comparison).toEqual(runs.sensitive!.comparison.filter((c) => c.session_id === one));
  }, 60_000);

  it('refuses an unknown model before reading anything', async () => {
    await expect(rescore(deps(), { from: FROM, to: TO, model: 'fatigue-v9' })).rejects.toMatchObject({
      code: 'MODEL_UNKNOWN',
      message: 'unknown fatigue model "fatigue-v9"; known models: fatigue-v1, fatigue-v1-sensitive',
    });
  });

  it('projects what-if scores into fatigue_scores_whatif keyed by model version, leaving fatigue_scores alone', async () => {
    // The fixture's database: nothing else of this file writes to it.
    const { pool } = fx;
    const projection = projectionRunner(fx, 'scores-whatif', config.topicPrefix);
    // Every record of the topic: the three runs over both sessions and the one-session run.
    const records = (await readAll(fx.kafka, fx.topics.scoresWhatIf)).length;
    await projection.start();
    const counts = await eventually(
      async () =>
        (
          await pool.query<{ model_version: string; n: number }>(
            `SELECT model_version, count(*)::int AS n FROM fatigue_scores_whatif GROUP BY 1 ORDER BY 1`,
          )
        ).rows,
      () => projection.applied >= records,
      60_000,
    );
    await projection.stop();
    // Every record applied, each model's windows stored once (the reruns' rows collide on the key).
    expect(projection.applied).toBe(records);
    expect(counts).toEqual([
      { model_version: 'fatigue-v1', n: runs.v1!.produced.scores },
      { model_version: 'fatigue-v1-sensitive', n: runs.sensitive!.produced.scores },
    ]);
    const row = await pool.query(
      `SELECT score, level, model_version, event_id FROM fatigue_scores_whatif
       WHERE model_version = 'fatigue-v1' AND session_id = $1 ORDER BY ts LIMIT 1`,
      [sessionIds[0]],
    );
    const first = live.scores[sessionIds[0]!]![0]!;
    expect(row.rows).toEqual([
      { score: first.score, level: first.level, model_version: 'fatigue-v1', event_id: first.event_id },
    ]);
    const untouched = await pool.query(
      `SELECT (SELECT count(*)::int FROM fatigue_scores) AS scores, (SELECT count(*)::int FROM sessions) AS sessions`,
    );
    expect(untouched.rows).toEqual([{ scores: 0, sessions: 0 }]);
    const key = await pool.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'fatigue_scores_whatif'::regclass AND contype = 'p'`,
    );
    // A session is the pair (tenant_id, session_id) in every read model (issue 11).
    expect(key.rows).toEqual([{ def: 'PRIMARY KEY (model_version, tenant_id, session_id, ts)' }]);
  }, 90_000);
});
