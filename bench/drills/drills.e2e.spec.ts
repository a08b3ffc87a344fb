import { runDrill, shortDrill, type DrillResult } from './drills';

/**
 * A few-seconds version of the failure drills (see "Failure drills" in bench/README.md): 3 live
 * sessions for 10 s on 3 partitions, the failure injected a third of the way in, then drain and the
 * audit. Each must end with zero lost and zero duplicated events in every projection and output
 * topic, and every event the simulator had acknowledged in its input topic. broker-kill starts a
 * private three-node cluster of its own (deploy/local/kafka-cluster.sh). Needs `npm run build` (the
 * roles run from dist/).
 */
const expectClean = (r: DrillResult) => {
  const failed = r.audit.checks.filter((c) => !c.ok);
  expect(failed).toEqual([]);
  expect({ lost: r.audit.lost, duplicated: r.audit.duplicated }).toEqual({ lost: 0, duplicated: 0 });
  expect(r.audit.input_events.eeg).toBe(shortDrill.sessions * shortDrill.seconds * 10);
};

describe('failure drills (short)', () => {
  jest.setTimeout(150_000);

  it('SIGKILL of one broker of three under load: every acknowledged event is in the topics once, outputs equal the replay, and the pipeline moves while it is down', async () => {
    const r = await runDrill('broker-kill', shortDrill);
    // The load must have run to its end: its acknowledged counts are part of the audit.
    expect({ exit: r.simulator_exit_code, output: r.observations.simulator_output }).toEqual({
      exit: 0,
      output: undefined,
    });
    expectClean(r);
    const acknowledged = r.audit.checks.filter((c) => c.name.endsWith('the simulator had acknowledged'));
    expect(acknowledged.map((c) => c.expected)).toEqual([6, 300, 450, 300, 0]);
    const bk = r.observations.broker_kill as {
      progress_after_kill_ms: number | null;
      isr_full_after_restart_ms: number | null;
    };
    expect(bk.progress_after_kill_ms).not.toBeNull();
    expect(bk.isr_full_after_restart_ms).not.toBeNull();
    // Records the live run found late (copied to late.v1, not lost) would be left out of the replay;
    // with the merge's caught-up claims there were none in any run (bench/README.md, broker-kill).
    expect(r.ok).toBe(true);
  }, 480_000);

  it('kill -9 of the processor and of the projection worker under load loses and duplicates nothing', async () => {
    const r = await runDrill('kill-worker', shortDrill);
    expectClean(r);
    expect(r.timeline.map((x) => x.what)).toEqual(
      expect.arrayContaining(['kill -9 processor', 'kill -9 projection worker']),
    );
    expect(r.ok).toBe(true);
  });

  it('a burst of non-Avro and unknown-schema records all land in the DLQ and the pipeline keeps flowing', async () => {
    const r = await runDrill('poison', shortDrill);
    expectClean(r);
    expect(r.audit.poison_records).toBe(66);
    const dlq = r.audit.checks.find((c) => c.name.startsWith('dlq'))!;
    // eeg: processor + eeg model; face: processor + face model; sessions: processor + sessions model + redis.
    expect(dlq.actual).toBe(30 * 2 + 30 * 2 + 6 * 3);
    const flow = r.observations.eeg_rows_after_burst as { before: number; after: number };
    expect(flow.after).toBeGreaterThan(flow.before);
  });

  it('with Redis killed the API keeps answering from PostgreSQL, and Redis is rebuilt afterwards', async () => {
    const r = await runDrill('redis-restart', shortDrill);
    expectClean(r);
    const api = r.observations.api_while_redis_down as Record<string, Record<string, number>>;
    expect(Object.keys(api['GET /v1/sessions/:id']!)).toEqual(['200']);
    expect(r.audit.checks.find((c) => c.name.startsWith('redis latest'))).toMatchObject({ expected: 3, lost: 0 });
  });

  it('with PostgreSQL stopped readiness goes red, then green, and the projections catch up with nothing lost', async () => {
    const r = await runDrill('postgres-restart', shortDrill);
    expectClean(r);
    const readiness = r.observations.readiness as { red_after_ms: number | null; green_after_ms: number | null };
    expect(readiness.red_after_ms).not.toBeNull();
    expect(readiness.green_after_ms).not.toBeNull();
  });

  it('a flood beyond the gateway rate limit gets 429s, keeps its memory bounded, and every 202 event is projected once', async () => {
    const r = await runDrill('gateway-flood', { ...shortDrill, seconds: 6 });
    const f = r.observations.gateway_flood as {
      responses: Record<string, number>;
      events_accepted: number;
      gateway_rss_mib: { before: number; max: number };
    };
    expect(f.responses['429']).toBeGreaterThan(0);
    expect(f.gateway_rss_mib.max - f.gateway_rss_mib.before).toBeLessThan(200);
    expect(r.audit.input_events.eeg).toBe(f.events_accepted);
    expect({ lost: r.audit.lost, duplicated: r.audit.duplicated }).toEqual({ lost: 0, duplicated: 0 });
  });

  it("trust: tenant B's hostile traffic is refused or dead-lettered with its reason, and A's outputs equal an undisturbed replay", async () => {
    const r = await runDrill('trust', shortDrill);
    // The audit is A's only, against the pure Replay of A's input: nothing lost, nothing extra.
    expectClean(r);
    const gw = r.observations.gateway_responses as Record<string, Record<string, number>>;
    expect(Object.keys(gw.cross_tenant!)).toEqual(['403']);
    for (const what of [
      'ts_year_ahead',
      'ts_year_behind',
      'eye_closure_5',
      'lane_offset_1e308',
      'device_id_nul',
      'ts_8.7e15',
    ])
      expect([what, Object.keys(gw[what]!)]).toEqual([what, ['400']]);
    const proc = (r.observations.dlq_by_consumer as Record<string, Record<string, number>>)['processor.fatigue']!;
    expect(proc.tenant_mismatch).toBeGreaterThan(0);
    expect(proc.rule_violation).toBeGreaterThan(0);
    expect(proc.ts_out_of_window).toBeGreaterThan(0);
    expect((r.observations.a_alerts as { cleared_session_ended_early: number }).cleared_session_ended_early).toBe(0);
    expect(r.ok).toBe(true);
  });
});
