import { eventually, freePort, processEnv, testConfig } from './support/env';
import { createTestDatabase } from './support/postgres';
import { processGroup, runVigil, startVigil, type VigilProcessGroup } from './support/processes';

/**
 * The walking skeleton end to end, as separate processes: simulator → Kafka (Avro via the registry)
 * → projection worker → PostgreSQL → API. The projection worker is killed with SIGKILL mid-stream and
 * restarted; the API must still report exactly the frames that were sent. Set up as an operator
 * would, with `vigil migrate`, `topics ensure` and `schemas register` on an empty database (the one
 * spec that runs those commands as processes; the others use test/support/pipeline.ts).
 */

/**
 * The simulated session's start: near now, whole minutes. Input topics stamp the broker's append time
 * and the trust rules refuse a ts more than 24 h behind the receiving clock.
 */
const START = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
const iso = (ts: number) => new Date(ts).toISOString();

const TELEMETRY = ['eeg', 'face', 'vehicle', 'game'] as const;
type TelemetryCounts = Record<(typeof TELEMETRY)[number], number>;

/** What the spec reads of GET /v1/sessions/:id (api/routes/sessions.ts, SessionDetail). */
interface SessionDetail {
  session_id: string;
  status: string;
  telemetry: {
    eeg: { frames: number; first_ts: string | null; last_ts: string | null };
    face: { frames: number };
    vehicle: { frames: number };
    game: { events: number };
  };
}

const countsOf = ({ telemetry }: SessionDetail): TelemetryCounts => ({
  eeg: telemetry.eeg.frames,
  face: telemetry.face.frames,
  vehicle: telemetry.vehicle.frames,
  game: telemetry.game.events,
});

/** The telemetry events `vigil simulate` published, per topic, from its last line (producers/cli.ts). */
function publishedTelemetry(output: string): TelemetryCounts {
  const line = /^published \d+ events .*?: (\{.*\})$/m.exec(output);
  if (!line) throw new Error(`no "published" line in the simulator's output:\n${output}`);
  const published = JSON.parse(line[1]!) as TelemetryCounts;
  return Object.fromEntries(TELEMETRY.map((topic) => [topic, published[topic]])) as TelemetryCounts;
}

describe('pipeline: device to API', () => {
  let db: { url: string; drop: () => Promise<void> };
  let env: Record<string, string>;
  let base: string;
  /** A reader key of tenant demo (the simulator's): /v1 needs a key. */
  let auth: { authorization: string };
  let vigil: VigilProcessGroup;

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = processEnv(testConfig(), {
      VIGIL_DATABASE_URL: db.url,
      VIGIL_API_PORT: String(port),
      VIGIL_LOG_LEVEL: 'info',
    });
    vigil = processGroup(env);
    await runVigil(['migrate'], env);
    await runVigil(['topics', 'ensure'], env);
    await runVigil(['schemas', 'register'], env);
    const key = (await runVigil(['keys', 'create', '--tenant', 'demo', '--role', 'reader'], env)).match(/vgl_\S+/)![0];
    auth = { authorization: `Bearer ${key}` };
  });

  afterAll(async () => {
    await vigil?.stopAll('SIGKILL');
    await db?.drop();
  });

  it('reports exactly the K frames sent, across a kill -9 and restart of the projection worker', async () => {
    const seconds = 12;
    const K = seconds * 10;
    const sim = vigil.start([
      'simulate',
      '--sessions',
      '1',
      '--duration',
      `${seconds}s`,
      '--speed',
      'realtime',
      '--seed',
      '42',
      '--start',
      iso(START),
    ]);
    const api = vigil.start(['api']);
    let worker = vigil.start(['project']);
    await eventually(
      () =>
        fetch(`${base}/health/live`).then(
          (r) => r.ok,
          () => false,
        ),
      (ok) => ok,
    );
    const sessionId = await eventually(
      async () => /sessions: (\S+)/.exec(sim.output())?.[1],
      (id) => !!id,
    );

    // Let some frames land, then kill the worker without warning, mid-stream.
    const mid = await eventually(
      () => session(sessionId!),
      (s) => (s?.telemetry.eeg.frames ?? 0) > 10,
    );
    expect(mid!.telemetry.eeg.frames).toBeLessThan(K);
    worker.child.kill('SIGKILL');
    await worker.exited;
    worker = vigil.start(['project']);

    expect(await sim.exited).toBe(0);
    // Done once every telemetry count has reached what the simulator published (one session, so one
    // partition per topic, applied in order): nothing is left to arrive, and a duplicate shows as a
    // count above its total.
    const published = publishedTelemetry(sim.output());
    const done = await eventually(
      () => session(sessionId!),
      (s) => s?.status === 'ended' && TELEMETRY.every((topic) => countsOf(s)[topic] >= published[topic]),
      60_000,
    );
    const final = await session(sessionId!);
    expect(final).toEqual(done);
    expect(countsOf(final!)).toEqual(published);
    expect(final).toMatchObject({
      session_id: sessionId,
      tenant_id: 'demo',
      status: 'ended',
      started_at: iso(START),
      telemetry: {
        eeg: { frames: K, first_ts: iso(START + 100), last_ts: iso(START + seconds * 1000) },
      },
    });
    expect(api.child.exitCode).toBeNull();
  });

  it('reports each dependency as up on /health/ready', async () => {
    const res = await fetch(`${base}/health/ready`);
    const body = (await res.json()) as { checks: Record<string, { status: string }> };
    expect(res.status).toBe(200);
    expect(
      Object.fromEntries(Object.entries(body.checks).map(([k, v]) => [k, (v as { status: string }).status])),
    ).toEqual({
      postgres: 'up',
      redis: 'up',
      kafka: 'up',
      schema_registry: 'up',
      projection_lag: 'up',
    });
  });

  it('answers 401 without a key, 404 for an unknown session and 400 naming the field for a malformed id', async () => {
    expect((await fetch(`${base}/v1/sessions/no-such-session`)).status).toBe(401);
    const missing = await fetch(`${base}/v1/sessions/no-such-session`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const bad = await fetch(`${base}/v1/sessions/${encodeURIComponent("x' OR 1=1 --")}`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: unknown }).errors).toEqual([{ field: 'id', message: expect.any(String) }]);
  });

  it('stops a role at start-up with a message naming a bad variable', async () => {
    const p = startVigil(['api'], { ...env, VIGIL_REDIS_URL: 'localhost:6379' });
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('VIGIL_REDIS_URL="localhost:6379"');
  });

  async function session(id: string) {
    const res = await fetch(`${base}/v1/sessions/${id}`, { headers: auth });
    if (res.status === 404) return undefined;
    return (await res.json()) as SessionDetail;
  }
});
