import { eventually, freePort, processEnv, testConfig } from './support/env';
import { pipelineFixture, type PipelineFixture } from './support/pipeline';
import { processGroup, runVigil, type VigilProcessGroup } from './support/processes';
import { sessionEvents, sessionIdOf } from '../producers/simulator/session';

/**
 * One trace from device to dashboard (docs/design.md §8), read back from the local Zipkin: gateway,
 * processor, projection worker and API as separate `dist/main.js` processes exporting spans. One
 * event POSTed through the gateway closes a window; its trace holds the gateway's HTTP and Kafka spans,
 * the processor's span for that record, and the projections applying the score it caused. An API read
 * has pg and ioredis children, and its response names its trace.
 */
/** The local stack's Zipkin (deploy/local/stack.sh: VIGIL_ZIPKIN_PORT, default 9411). */
const ZIPKIN = `http://127.0.0.1:${process.env.VIGIL_ZIPKIN_PORT ?? '9411'}`;
/**
 * Near now, whole minutes (window ends are multiples of 5 s): the gateway refuses a ts more than 24 h
 * behind its clock or 60 s ahead, and the processor likewise against the broker's append time.
 */
const START = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;

interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind?: string;
  localEndpoint?: { serviceName?: string };
  tags?: Record<string, string>;
}

const traceIdOf = (traceparent: string | null) => /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(traceparent ?? '')?.[1];

async function zipkinTrace(traceId: string): Promise<ZipkinSpan[]> {
  const res = await fetch(`${ZIPKIN}/api/v2/trace/${traceId}`);
  return res.ok ? ((await res.json()) as ZipkinSpan[]) : [];
}

const service = (s: ZipkinSpan) => s.localEndpoint?.serviceName ?? '';
/** The database a client span talks to (`db.system.name` in current semantic conventions). */
const dbSystem = (s: ZipkinSpan) => s.tags?.['db.system.name'] ?? s.tags?.['db.system'];

/** The chain of parents of a span within its trace, nearest first. */
function ancestors(spans: ZipkinSpan[], span: ZipkinSpan): ZipkinSpan[] {
  const byId = new Map(spans.map((s) => [s.id, s]));
  const out: ZipkinSpan[] = [];
  for (let p = span.parentId && byId.get(span.parentId); p; p = p.parentId ? byId.get(p.parentId) : undefined) {
    out.push(p);
  }
  return out;
}

describe('one trace: device → gateway → Kafka → processor → projections, and an API read', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let env: Record<string, string>;
  let gateway: string;
  let api: string;
  let deviceKey: string;
  let readerKey: string;
  let vigil: VigilProcessGroup;
  const TENANT = 'fleet-trace';
  const sessionId = sessionIdOf(77, 0);
  const events = [
    ...sessionEvents({ seed: 77, index: 0, tenantId: TENANT, startTs: START, durationMs: 30_000, profile: 'alert' }),
  ];

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    const [gp, ap] = [await freePort(), await freePort()];
    gateway = `http://127.0.0.1:${gp}`;
    api = `http://127.0.0.1:${ap}`;
    env = processEnv(config, {
      VIGIL_DATABASE_URL: fx.databaseUrl,
      VIGIL_API_PORT: String(ap),
      VIGIL_GATEWAY_PORT: String(gp),
      VIGIL_TRACING: 'on',
      VIGIL_ZIPKIN_URL: `${ZIPKIN}/api/v2/spans`,
    });
    const key = async (role: string) =>
      (await runVigil(['keys', 'create', '--tenant', TENANT, '--role', role], env)).match(/vgl_\S+/)![0];
    [deviceKey, readerKey] = await Promise.all([key('device'), key('reader')]);
    vigil = processGroup(env);
    vigil.start(['gateway']);
    vigil.start(['process']);
    vigil.start(['project']);
    vigil.start(['api']);
    const up = (url: string) =>
      eventually(
        () =>
          fetch(url).then(
            (r) => r.status,
            () => 0,
          ),
        (s) => s === 200,
        60_000,
      );
    expect(await up(`${gateway}/health/ready`)).toBe(200);
    expect(await up(`${api}/health/live`)).toBe(200);
  });

  afterAll(async () => {
    await vigil?.stopAll('SIGTERM');
    await fx?.close();
  });

  const post = (stream: string, body: unknown[]) =>
    fetch(`${gateway}/v1/ingest/${stream}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${deviceKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body.map((e) => ({ ...(e as object), tenant_id: undefined }))),
    });
  const scoreTimes = async () =>
    (
      await fx.pool.query<{ ts: Date }>('SELECT ts FROM fatigue_scores WHERE session_id = $1 ORDER BY ts', [sessionId])
    ).rows.map((r) => r.ts.getTime() - START);

  it('follows one gateway request through Kafka, the processor and the projections in a single trace', async () => {
    // The first 13 s of the session, posted as devices would: second by second, every stream (the
    // processor allows 2 s of lateness across streams). It scores the windows ending at 5 and 10 s.
    for (let second = 0; second < 13; second++) {
      for (const stream of ['sessions', 'eeg', 'face', 'vehicle', 'game']) {
        const batch = events
          .filter(
            (e) =>
              e.topic === stream && e.event.ts >= START + second * 1000 && e.event.ts < START + (second + 1) * 1000,
          )
          .map((e) => e.event);
        if (batch.length) expect((await post(stream, batch)).status).toBe(202);
      }
    }
    expect(await eventually(scoreTimes, (t) => t.includes(10_000), 60_000)).toContain(10_000);

    // One event at 17.5 s moves the watermark past 15 s: processing it emits the score of that window.
    const one = events.find((e) => e.topic === 'vehicle' && e.event.ts >= START + 17_500)!.event;
    const res = await post('vehicle', [one]);
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const traceId = traceIdOf(res.headers.get('traceparent'));
    expect(traceId).toBeDefined();
    expect(await eventually(scoreTimes, (t) => t.includes(15_000), 60_000)).toContain(15_000);

    const spans = await eventually(
      () => zipkinTrace(traceId!),
      // Each process exports its spans in its own batches (every 5 s): wait for all of them.
      (ss) =>
        ss.some((s) => service(s) === 'vigil-gateway' && s.kind === 'SERVER') &&
        ss.some((s) => service(s) === 'vigil-process' && s.name === 'fatigue process') &&
        ss.some((s) => service(s) === 'vigil-project' && s.name === 'project vehicle') &&
        ss.some((s) => service(s) === 'vigil-project' && s.name === 'project scores') &&
        ss.some((s) => service(s) === 'vigil-project' && s.name === 'project redis'),
      60_000,
    );
    const services = new Set(spans.map(service));
    expect([...services].sort()).toEqual(['vigil-gateway', 'vigil-process', 'vigil-project']);
    expect(spans.every((s) => s.traceId === traceId)).toBe(true);

    const server = spans.find((s) => service(s) === 'vigil-gateway' && s.kind === 'SERVER')!;
    expect(server.name).toBe('post /v1/ingest/:stream');
    expect(
      spans.some(
        (s) => service(s) === 'vigil-gateway' && s.kind === 'PRODUCER' && /send .*telemetry\.vehicle/.test(s.name),
      ),
    ).toBe(true);
    // The processor continues the record's trace; the projections continue the processor's.
    const processed = spans.find((s) => service(s) === 'vigil-process' && s.name === 'fatigue process')!;
    expect(processed.kind).toBe('CONSUMER');
    expect(ancestors(spans, processed).map((s) => s.id)).toContain(server.id);
    for (const name of ['project scores', 'project redis']) {
      const projected = spans.find((s) => service(s) === 'vigil-project' && s.name === name)!;
      expect({ name, parent: projected.parentId }).toEqual({ name, parent: processed.id });
    }
    // The vehicle frame itself is projected in the same trace, and the projection's SQL is traced.
    const vehicle = spans.find((s) => service(s) === 'vigil-project' && s.name === 'project vehicle')!;
    expect(ancestors(spans, vehicle).map((s) => s.id)).toContain(server.id);
    const scores = spans.find((s) => s.name === 'project scores')!;
    expect(spans.some((s) => s.parentId === scores.id && dbSystem(s) === 'postgresql')).toBe(true);
  });

  it('traces an API read to PostgreSQL and Redis, and names the trace in the response', async () => {
    const res = await fetch(`${api}/v1/sessions/${sessionId}`, {
      headers: { authorization: `Bearer ${readerKey}`, 'x-request-id': 'trace-e2e-1' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-e2e-1');
    const traceId = traceIdOf(res.headers.get('traceparent'));
    expect(traceId).toBeDefined();
    const spans = await eventually(
      () => zipkinTrace(traceId!),
      (ss) =>
        ss.some((s) => s.kind === 'SERVER') &&
        ss.some((s) => dbSystem(s) === 'redis') &&
        ss.some((s) => dbSystem(s) === 'postgresql'),
      60_000,
    );
    expect(new Set(spans.map(service))).toEqual(new Set(['vigil-api']));
    const server = spans.find((s) => s.kind === 'SERVER')!;
    // Named by its route, not its path (a session id in a span name would make one name per session).
    expect({ name: server.name, route: server.tags?.['http.route'] }).toEqual({
      name: 'get /v1/sessions/:id',
      route: '/v1/sessions/:id',
    });
    for (const system of ['postgresql', 'redis']) {
      const client = spans.find((s) => dbSystem(s) === system)!;
      expect({
        system,
        kind: client.kind,
        underServer: ancestors(spans, client).some((a) => a.id === server.id),
      }).toEqual({
        system,
        kind: 'CLIENT',
        underServer: true,
      });
    }
  });

  it("keeps each of several concurrent reads' Redis call in its own trace", async () => {
    // Sent together, so the API issues their Redis reads in the same tick.
    const answers = await Promise.all(
      [1, 2, 3, 4].map(() =>
        fetch(`${api}/v1/sessions/${sessionId}`, { headers: { authorization: `Bearer ${readerKey}` } }),
      ),
    );
    const traceIds = answers.map((r) => traceIdOf(r.headers.get('traceparent'))!);
    expect(new Set(traceIds).size).toBe(4);
    // Each trace holds its own HGETALL of the latest score (a rate-limit call may join it when the
    // caller's window starts anew: not counted here).
    const reads = async () =>
      Promise.all(traceIds.map(async (t) => (await zipkinTrace(t)).filter((s) => s.name === 'hgetall').length));
    expect(await eventually(reads, (n) => n.every((c) => c >= 1), 30_000)).toEqual([1, 1, 1, 1]);
  });
});
