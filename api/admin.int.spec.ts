import { apiFixture, type ApiFixture } from '../test/support/api';
import { testLogger } from '../test/support/env';
import { startBoss, stopBoss, type PgBoss } from '../core/jobs';
import { ADMIN_QUEUES } from './admin-queues';

/**
 * Admin routes against real PostgreSQL (pg-boss) and Redis: replay/rebuild requests become jobs whose
 * status reads back, per tenant; rebuilds and every all-tenant action need an operator key (a tenant
 * admin gets 403); cache invalidation moves the generation.
 */
describe('admin jobs and cache invalidation (real PostgreSQL, pg-boss, Redis)', () => {
  let fx: ApiFixture;
  let boss: PgBoss;
  let url: string;
  const keys = {} as Record<'admin' | 'reader' | 'otherAdmin' | 'operator', string>;

  beforeAll(async () => {
    fx = await apiFixture();
    keys.admin = await fx.key('fleet-a', 'admin');
    keys.reader = await fx.key('fleet-a', 'reader');
    keys.otherAdmin = await fx.key('fleet-b', 'admin');
    keys.operator = await fx.key('', 'operator');
    const dbUrl = (fx.pool as unknown as { options: { connectionString: string } }).options.connectionString;
    boss = await startBoss(
      { url: dbUrl, poolMax: 2 },
      { queues: Object.values(ADMIN_QUEUES), log: testLogger(), supervise: false },
    );
    url = await fx.start({ boss });
  });
  afterAll(async () => {
    if (boss) await stopBoss(boss);
    await fx?.close();
  });

  const call = (method: string, path: string, key: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('enqueues a rebuild and an export as jobs (202 with the id) whose status and output read back', async () => {
    const rebuild = await call('POST', '/v1/admin/replays', keys.operator, {
      kind: 'rebuild',
      projection: 'scores',
      from: '2026-03-01T00:00:00Z',
    });
    expect(rebuild.status).toBe(202);
    const r = (await rebuild.json()) as { id: string; queue: string; status_url: string };
    expect(r).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      queue: 'projection-rebuild',
      status_url: `/v1/admin/replays/${r.id}`,
    });
    const exp = await call('POST', '/v1/admin/replays', keys.admin, {
      kind: 'export',
      topic: 'scores',
      from: '2026-03-01T00:00:00Z',
      to: '2026-03-02T00:00:00Z',
      session: 'sess-1',
      format: 'ndjson',
    });
    expect(exp.status).toBe(202);
    const e = (await exp.json()) as { id: string; queue: string };
    expect(e.queue).toBe('replay-export');

    const created = await call('GET', r.status_url, keys.operator);
    expect(created.status).toBe(200);
    const keyId = /^vgl_(\w{12})_/.exec(keys.operator)![1];
    expect(await created.json()).toEqual({
      id: r.id,
      queue: 'projection-rebuild',
      state: 'created',
      data: {
        kind: 'rebuild',
        projection: 'scores',
        from: '2026-03-01T00:00:00Z',
        tenant_id: '*',
        requested_by: keyId,
      },
      output: null,
      retry_count: 0,
      created_on: expect.any(String),
      started_on: null,
      completed_on: null,
    });

    // A worker takes the export job and completes it: the status shows the output.
    const [job] = await boss.fetch<Record<string, unknown>>('replay-export');
    expect(job!.id).toBe(e.id);
    await boss.complete('replay-export', e.id, { exported: 12 });
    const done = (await (await call('GET', `/v1/admin/replays/${e.id}`, keys.admin)).json()) as Record<string, unknown>;
    expect(done).toMatchObject({ id: e.id, queue: 'replay-export', state: 'completed', output: { exported: 12 } });
    expect(done.completed_on).toEqual(expect.any(String));
  });

  it('refuses a rebuild to a tenant admin key with 403 problem+json and enqueues it for an operator key', async () => {
    const refused = await call('POST', '/v1/admin/replays', keys.admin, { kind: 'rebuild', projection: 'alerts' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await refused.json()).toMatchObject({
      status: 403,
      detail: 'a rebuild rewrites the read model of every tenant: it needs an operator key; this key has role admin',
    });
    const truncatedToo = await call('POST', '/v1/admin/replays', keys.admin, {
      kind: 'rebuild',
      projection: 'alerts',
      allowTruncated: true,
    });
    expect(truncatedToo.status).toBe(403);
    const accepted = await call('POST', '/v1/admin/replays', keys.operator, {
      kind: 'rebuild',
      projection: 'alerts',
      allowTruncated: true,
    });
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    // The rebuild job is the operator's: no tenant admin reads it, the operator does.
    expect((await call('GET', `/v1/admin/replays/${id}`, keys.admin)).status).toBe(404);
    const job = await call('GET', `/v1/admin/replays/${id}`, keys.operator);
    expect(job.status).toBe(200);
    expect(((await job.json()) as { data: unknown }).data).toMatchObject({
      kind: 'rebuild',
      projection: 'alerts',
      allowTruncated: true,
      tenant_id: '*',
    });
  });

  it('refuses reader keys (403), hides other tenants’ jobs (404), validates the request (400)', async () => {
    const enq = await call('POST', '/v1/admin/replays', keys.admin, {
      kind: 'export',
      topic: 'alerts',
      from: '2026-03-01T00:00:00Z',
      to: '2026-03-02T00:00:00Z',
      format: 'csv',
    });
    expect(enq.status).toBe(202);
    const { id } = (await enq.json()) as { id: string };
    expect(
      (await call('POST', '/v1/admin/replays', keys.reader, { kind: 'rebuild', projection: 'alerts' })).status,
    ).toBe(403);
    expect((await call('GET', `/v1/admin/replays/${id}`, keys.reader)).status).toBe(403);
    expect((await call('POST', '/v1/admin/cache/invalidate', keys.reader)).status).toBe(403);
    expect((await call('GET', `/v1/admin/replays/${id}`, keys.otherAdmin)).status).toBe(404);
    // An operator reads every tenant's jobs.
    expect((await call('GET', `/v1/admin/replays/${id}`, keys.operator)).status).toBe(200);
    expect((await call('GET', '/v1/admin/replays/not-a-uuid', keys.admin)).status).toBe(400);
    const cases: [unknown, string[]][] = [
      [{ kind: 'rebuild', projection: 'nope' }, ['projection']],
      [
        { kind: 'export', topic: 'scores', from: '2026-03-02T00:00:00Z', to: '2026-03-01T00:00:00Z', format: 'csv' },
        ['to'],
      ],
      [
        { kind: 'export', topic: 'x; DROP TABLE alerts', from: 'yesterday', to: '2026-03-01T00:00:00Z', format: 'xml' },
        ['format', 'from', 'topic'],
      ],
      [{ kind: 'delete-everything' }, ['kind']],
    ];
    for (const [body, fields] of cases) {
      const res = await call('POST', '/v1/admin/replays', keys.admin, body);
      expect(res.status).toBe(400);
      const errors = ((await res.json()) as { errors: { field: string }[] }).errors.map((x) => x.field).sort();
      expect({ body, errors }).toEqual({ body, errors: fields });
    }
  });

  it('answers 503 for job routes where pg-boss is not running', async () => {
    const noBoss = await fx.start();
    const res = await fetch(`${noBoss}/v1/admin/replays`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'rebuild', projection: 'scores' }),
    });
    expect(res.status).toBe(503);
  });

  it("moves the tenant's report cache to a new generation", async () => {
    const first = await call('POST', '/v1/admin/cache/invalidate', keys.admin);
    expect(first.status).toBe(200);
    const a = (await first.json()) as { tenant_id: string; generation: number };
    const b = (await (await call('POST', '/v1/admin/cache/invalidate', keys.admin)).json()) as { generation: number };
    expect(a.tenant_id).toBe('fleet-a');
    expect(b.generation).toBe(a.generation + 1);
  });

  it("lets a tenant admin invalidate no other tenant's cache (403), an operator one or every tenant's", async () => {
    const other = await call('POST', '/v1/admin/cache/invalidate', keys.admin, { tenant_id: 'fleet-b' });
    expect(other.status).toBe(403);
    const own = (await (
      await call('POST', '/v1/admin/cache/invalidate', keys.otherAdmin, { tenant_id: 'fleet-b' })
    ).json()) as { tenant_id: string; generation: number };
    expect(own.tenant_id).toBe('fleet-b');
    const one = await call('POST', '/v1/admin/cache/invalidate', keys.operator, { tenant_id: 'fleet-b' });
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual({ tenant_id: 'fleet-b', generation: own.generation + 1 });
    const before = (await (await call('POST', '/v1/admin/cache/invalidate', keys.admin)).json()) as {
      generation: number;
    };
    const all = await call('POST', '/v1/admin/cache/invalidate', keys.operator);
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({
      tenant_id: '*',
      generation: 2,
      tenants: { 'fleet-a': before.generation + 1, 'fleet-b': own.generation + 2 },
    });
  });

  it('serves no tenant data to an operator key (403 on tenant reads)', async () => {
    const res = await call('GET', '/v1/sessions', keys.operator);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { detail: string }).detail).toBe(
      'this needs a key of role reader or admin; this key has role operator',
    );
  });
});
