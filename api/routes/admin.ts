import { Router } from 'express';
import { z } from 'zod';
import type PgBoss from 'pg-boss';
import type { Logger } from '../../core/logger';
import { VigilError } from '../../core/errors';
import { ADMIN_QUEUES } from '../admin-queues';
import { route } from '../openapi';
import { forbidden, notFound } from '../../core/http/problem';
import { isOperator } from '../auth';
import { ALL_TENANTS } from '../../core/api-keys';
import { SessionIdParam } from './live';
import { readModels } from '../../projections/index';
import { topicKeys } from '../../schemas/catalogue';
import type { ApiDeps } from '../app';
import { invalidateTenantCache } from '../../core/cache';

interface AdminDeps {
  log: Logger;
  /** Absent in a process without pg-boss: admin job routes answer 503. */
  boss?: PgBoss;
  /** Projections a rebuild may name (the PostgreSQL read models; the Redis one rebuilds by replay from its empty checkpoint). */
  projections: readonly string[];
  /** Catalogue topic keys (and full names) an export may name. */
  topics: readonly string[];
  /** Moves the tenant's report cache to a new generation (old entries are never read again). */
  invalidateCache: (tenantId: string) => Promise<number>;
  /** Every tenant id (an operator's cache invalidation without `tenant_id` moves them all). */
  tenants: () => Promise<string[]>;
}

const Instant = z.string().datetime({ offset: true }).openapi({ example: '2026-03-01T08:00:00Z' });

function replayBody(projections: readonly string[], topics: readonly string[]) {
  const oneOf = (values: readonly string[], what: string) =>
    z.string().refine((v) => values.includes(v), { message: `unknown ${what}; one of ${values.join(', ')}` });
  return z
    .discriminatedUnion('kind', [
      z
        .object({
          kind: z.literal('rebuild'),
          projection: oneOf(projections, 'projection'),
          from: Instant.optional().openapi({ description: 'rebuild from this event time (default: everything)' }),
          allowTruncated: z.boolean().optional().openapi({
            description:
              'rebuild even though Kafka no longer holds part of the history (a partition whose log start offset is above 0, or above the first offset at `from`): the rows of the deleted records are lost for every tenant. Default false: the job fails with HISTORY_TRUNCATED naming the partitions',
          }),
        })
        .strict(),
      z
        .object({
          kind: z.literal('export'),
          topic: oneOf(topics, 'topic'),
          from: Instant,
          to: Instant,
          session: SessionIdParam.shape.id.optional(),
          format: z.enum(['ndjson', 'csv']),
        })
        .strict(),
    ])
    .superRefine((b, ctx) => {
      if (b.kind !== 'export') return;
      const span = Date.parse(b.to) - Date.parse(b.from);
      if (span <= 0) ctx.addIssue({ code: 'custom', message: 'must be after from', path: ['to'] });
      else if (span > 31 * 86_400_000)
        ctx.addIssue({ code: 'custom', message: 'at most 31 days after from', path: ['to'] });
    })
    .openapi('ReplayRequest');
}

const JobAccepted = z.object({ id: z.string().uuid(), queue: z.string(), status_url: z.string() });
const JobStatus = z.object({
  id: z.string().uuid(),
  queue: z.string(),
  state: z.enum(['created', 'retry', 'active', 'completed', 'cancelled', 'failed']),
  data: z.record(z.unknown()),
  output: z.unknown(),
  retry_count: z.number().int(),
  created_on: z.string(),
  started_on: z.string().nullable(),
  completed_on: z.string().nullable(),
});

function bossOf(deps: AdminDeps): PgBoss {
  if (!deps.boss) throw new VigilError('DATABASE_UNAVAILABLE', 'the job queue is not available in this process');
  return deps.boss;
}

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

/**
 * Admin routes: replay/rebuild requests as pg-boss jobs with readable status, and report cache
 * invalidation. A rebuild rewrites a read model for every tenant, so it needs an operator key (a tenant
 * admin gets 403); an export is filtered by the caller's tenant, so a tenant admin may ask for one (an
 * operator's covers every tenant). Jobs carry the requesting tenant (`*` for an operator); another
 * tenant's job id is a 404 to a tenant admin, an operator reads every job.
 */
export const adminRoutes = (d: ApiDeps): Router =>
  adminRouter({
    log: d.log,
    boss: d.boss,
    projections: Object.keys(readModels),
    topics: [...topicKeys, ...topicKeys.map((k) => d.topics[k])],
    invalidateCache: (tenantId) => invalidateTenantCache(d.redis, d.config.topicPrefix, tenantId),
    tenants: async () =>
      (await d.pool.query<{ tenant_id: string }>('SELECT tenant_id FROM tenants ORDER BY tenant_id')).rows.map(
        (r) => r.tenant_id,
      ),
  });

function adminRouter(deps: AdminDeps): Router {
  const r = Router();
  route(
    r,
    {
      method: 'post',
      path: '/v1/admin/replays',
      summary: 'Request a projection rebuild (operator) or a topic export (a background job)',
      description:
        "kind rebuild: operator key only (a tenant admin gets 403): it rewrites the read model for every tenant. kind export: the caller's tenant's events (an operator's: every tenant's).",
      tags: ['admin'],
      roles: ['admin', 'operator'],
      body: replayBody(deps.projections, deps.topics),
      responses: {
        202: { description: 'the job was enqueued; poll status_url', schema: JobAccepted },
        403: { description: 'a rebuild asked with a key that is not an operator key' },
        503: { description: 'the job queue is unavailable' },
      },
    },
    async ({ body, principal }, _req, res) => {
      if (body.kind === 'rebuild' && !isOperator(principal)) {
        throw forbidden(
          `a rebuild rewrites the read model of every tenant: it needs an operator key; this key has role ${principal.role}`,
        );
      }
      const boss = bossOf(deps);
      const queue = body.kind === 'rebuild' ? ADMIN_QUEUES.rebuild.name : ADMIN_QUEUES.export.name;
      const id = await boss.send(queue, { ...body, tenant_id: principal.tenantId, requested_by: principal.keyId });
      if (!id) throw new VigilError('DATABASE_UNAVAILABLE', `queue ${queue} refused the job`, { retriable: true });
      deps.log.info({ job_id: id, queue, key_id: principal.keyId }, 'admin job enqueued');
      res.status(202).json({ id, queue, status_url: `/v1/admin/replays/${id}` });
    },
  );
  route(
    r,
    {
      method: 'get',
      path: '/v1/admin/replays/:id',
      summary: 'Status and output of a replay or rebuild job',
      description: "a tenant admin reads its tenant's jobs only; an operator reads every job",
      tags: ['admin'],
      roles: ['admin', 'operator'],
      params: z.object({ id: z.string().uuid() }),
      responses: {
        200: { description: 'the job', schema: JobStatus },
        404: { description: 'no such job for this tenant' },
      },
    },
    async ({ params, principal }, _req, res) => {
      const boss = bossOf(deps);
      for (const q of Object.values(ADMIN_QUEUES)) {
        const job = await boss.getJobById<Record<string, unknown>>(q.name, params.id, { includeArchive: true });
        if (!job || (!isOperator(principal) && job.data?.tenant_id !== principal.tenantId)) continue;
        res.json({
          id: job.id,
          queue: q.name,
          state: job.state,
          data: job.data,
          output: job.output ?? null,
          retry_count: job.retryCount,
          created_on: iso(job.createdOn),
          started_on: iso(job.startedOn),
          completed_on: iso(job.completedOn),
        });
        return;
      }
      throw notFound(`job ${params.id}`);
    },
  );
  route(
    r,
    {
      method: 'post',
      path: '/v1/admin/cache/invalidate',
      summary: 'Invalidate cached report answers: the own tenant (admin), one or every tenant (operator)',
      description:
        "an admin key invalidates its tenant's cache (a `tenant_id` in the body other than its own is a 403); an operator key the body's `tenant_id`, or without one every tenant's",
      tags: ['admin'],
      roles: ['admin', 'operator'],
      body: z
        .object({ tenant_id: z.string().min(1).max(128).optional() })
        .strict()
        .optional()
        .openapi('CacheInvalidateRequest'),
      responses: {
        200: {
          description: 'the cache moved to a new generation (per tenant)',
          schema: z.object({
            tenant_id: z.string(),
            generation: z.number().int(),
            tenants: z.record(z.number().int()).optional(),
          }),
        },
        403: { description: 'a tenant admin named another tenant' },
      },
    },
    async ({ principal, body }, _req, res) => {
      const named = body?.tenant_id;
      if (!isOperator(principal)) {
        if (named !== undefined && named !== principal.tenantId)
          throw forbidden("an admin key invalidates only its own tenant's cache; other tenants need an operator key");
        const generation = await deps.invalidateCache(principal.tenantId);
        res.json({ tenant_id: principal.tenantId, generation });
        return;
      }
      if (named !== undefined) {
        res.json({ tenant_id: named, generation: await deps.invalidateCache(named) });
        return;
      }
      const tenants: Record<string, number> = {};
      for (const t of await deps.tenants()) tenants[t] = await deps.invalidateCache(t);
      deps.log.info(
        { key_id: principal.keyId, tenants: Object.keys(tenants).length },
        'every tenant cache invalidated',
      );
      res.json({ tenant_id: ALL_TENANTS, generation: Object.keys(tenants).length, tenants });
    },
  );
  return r;
}
