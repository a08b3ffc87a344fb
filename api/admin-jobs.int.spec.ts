import { readFile, rm } from 'node:fs/promises';
import { apiFixture, type ApiFixture } from '../test/support/api';
import { eventually, testLogger } from '../test/support/env';
import { jobsWorkerDeps } from '../test/support/jobs';
import { kafkaFixture, type KafkaFixture } from '../test/support/stack';
import { startBoss, stopBoss, type PgBoss } from '../core/jobs';
import { startJobsWorker, type JobsWorker } from '../jobs/worker';
import { rebuildJob } from '../projections/rebuild/job';
import { exportJob } from '../projections/replay/job';
import { sessionEvents } from '../producers/simulator/session';
import type { SessionEvent } from '../schemas/types';
import { ADMIN_QUEUES } from './admin-queues';

/**
 * Admin requests carried out: the API enqueues, `vigil jobs`'s worker (in process here) runs the
 * export and rebuild handlers against real Kafka and PostgreSQL, and the status route shows the output.
 */
// Recent: the jobs worker's rebuild refuses a ts outside the window around the append time.
const T0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;

describe('admin jobs run by the jobs worker (real Kafka, PostgreSQL, pg-boss)', () => {
  let fx: ApiFixture;
  let kfx: KafkaFixture;
  let boss: PgBoss;
  let worker: JobsWorker;
  let url: string;
  let admin: string;
  let operator: string;
  const sessionsOf = (tenantId: string, index: number) =>
    [...sessionEvents({ seed: 5, index, tenantId, startTs: T0, durationMs: 10_000, profile: 'alert', modalities: [] })]
      .filter((e) => e.topic === 'sessions')
      .map((e) => e.event as SessionEvent);
  const mine = sessionsOf('fleet-a', 0);
  const theirs = sessionsOf('fleet-b', 1);

  beforeAll(async () => {
    fx = await apiFixture();
    kfx = await kafkaFixture(fx.config);
    admin = await fx.key('fleet-a', 'admin');
    operator = await fx.key('', 'operator');
    const producer = kfx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: kfx.topics.sessions,
      messages: [...mine, ...theirs].map((e) => ({ key: e.session_id, value: kfx.serde.encode('sessions', e) })),
    });
    await producer.disconnect();
    boss = await startBoss(
      { url: fx.databaseUrl, poolMax: 2 },
      { queues: Object.values(ADMIN_QUEUES), log: testLogger(), supervise: false },
    );
    worker = await startJobsWorker(
      jobsWorkerDeps({ url: fx.databaseUrl, pool: fx.pool }, { config: fx.config, ...kfx }),
      {
        handlers: [rebuildJob, exportJob],
        trigger: false,
        pollingIntervalSeconds: 0.5,
      },
    );
    url = await fx.start({ boss });
  });
  afterAll(async () => {
    await worker?.stop();
    if (boss) await stopBoss(boss);
    await kfx?.close();
    await fx?.close();
  });

  const post = async (body: unknown, key = admin) => {
    const res = await fetch(`${url}/v1/admin/replays`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };
  const status = (id: string, key = admin) =>
    eventually(
      async () =>
        (await (
          await fetch(`${url}/v1/admin/replays/${id}`, { headers: { authorization: `Bearer ${key}` } })
        ).json()) as {
          state: string;
          output: Record<string, unknown> | null;
        },
      (s) => s.state === 'completed' || s.state === 'failed',
      60_000,
    );

  it("exports the requesting tenant's events of a topic and range to a file named in the job's output", async () => {
    const id = await post({
      kind: 'export',
      topic: 'sessions',
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 60_000).toISOString(),
      format: 'ndjson',
    });
    const done = await status(id);
    expect(done.state).toBe('completed');
    expect(done.output).toMatchObject({ exported: mine.length, scanned: mine.length + theirs.length, aborted: false });
    const lines = (await readFile(done.output!.file as string, 'utf8')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { value: SessionEvent }).value.event_id)).toEqual(
      mine.map((e) => e.event_id),
    );
    expect(done.output!.bytes).toBe(Buffer.byteLength(lines.join('\n') + '\n'));
    await rm(done.output!.file as string);
  });

  it('rebuilds a read model up to where the live projection stands, and reports it in the output', async () => {
    // The live sessions projection has read the whole topic (its checkpoints at the end offsets), but
    // its table lost the rows: the rebuild replays to those checkpoints and swaps the result in.
    for (const o of await kfx.admin.fetchTopicOffsets(kfx.topics.sessions)) {
      await fx.pool.query(
        `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ('sessions', $1, $2, $3)`,
        [kfx.topics.sessions, o.partition, o.high],
      );
    }
    const id = await post({ kind: 'rebuild', projection: 'sessions' }, operator);
    const done = await status(id, operator);
    expect(done.state).toBe('completed');
    expect(done.output).toMatchObject({ model: 'sessions', applied: mine.length + theirs.length, undecodable: 0 });
    const { rows } = await fx.pool.query('SELECT session_id, tenant_id, status FROM sessions ORDER BY tenant_id');
    expect(rows).toEqual([
      { session_id: mine[0]!.session_id, tenant_id: 'fleet-a', status: 'ended' },
      { session_id: theirs[0]!.session_id, tenant_id: 'fleet-b', status: 'ended' },
    ]);
  });
});
