import * as os from 'node:os';
import { statfs } from 'node:fs/promises';
import type { Admin } from 'kafkajs';
import type { Pool } from '../core/db';
import type { Redis } from '../core/redis';
import { messageOf } from '../core/errors';
import { redisKeys } from '../core/redis-keys';
import { isRebuildProjection } from '../projections/rebuild/sql';

/**
 * What `/health/ready` and `/health` report beyond "it answers": projection lag, versions, TimescaleDB
 * state, consumer lag, job queue depth and the host. Each part is gathered independently; a part that
 * fails reports `{ error }` instead of failing the whole report.
 */

/** Per topic: partition → end offset (the high watermark). */
async function endOffsets(admin: Admin, topics: readonly string[]): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>();
  await Promise.all(
    topics.map(async (t) => {
      const offsets = await admin.fetchTopicOffsets(t);
      out.set(t, new Map(offsets.map((o) => [o.partition, Number(o.high)])));
    }),
  );
  return out;
}

interface ProjectionLag {
  /** Records written to the projections' topics that they have not applied yet, summed. */
  total: number;
  byProjection: Record<string, number>;
}

/**
 * Lag of every projection with a checkpoint: end offset − checkpoint summed over the partitions of each
 * topic it has checkpointed (a partition without a checkpoint counts from 0). PostgreSQL projections
 * keep their checkpoints in `projection_checkpoints`; the Redis projection in its Redis hash. For
 * transactional topics (scores, alerts) the end offset includes the last transaction's commit marker,
 * so a caught-up projection shows up to 1 per partition. A rebuild's own checkpoints
 * (`<model>@rebuild_<run>`, see projections/rebuild) are not a projection readers depend on: they are
 * left out, so a rebuild (which starts them at 0) never takes the API out of service.
 */
export async function projectionLag(pool: Pool, admin: Admin, redis: Redis, prefix: string): Promise<ProjectionLag> {
  const checkpoints = new Map<string, Map<string, Map<number, number>>>(); // projection → topic → partition → next
  const put = (projection: string, topic: string, partition: number, next: number) => {
    let byTopic = checkpoints.get(projection);
    if (!byTopic) checkpoints.set(projection, (byTopic = new Map()));
    let parts = byTopic.get(topic);
    if (!parts) byTopic.set(topic, (parts = new Map()));
    parts.set(partition, next);
  };
  const { rows } = await pool.query<{ projection: string; topic: string; partition: number; next_offset: string }>(
    'SELECT projection, topic, partition, next_offset FROM projection_checkpoints',
  );
  for (const r of rows) {
    if (!isRebuildProjection(r.projection)) put(r.projection, r.topic, r.partition, Number(r.next_offset));
  }
  const fromRedis = await redis.hgetall(redisKeys(prefix).checkpoints('redis')).catch(() => ({}));
  for (const [field, next] of Object.entries(fromRedis)) {
    const i = field.lastIndexOf(':');
    if (i > 0) put('redis', field.slice(0, i), Number(field.slice(i + 1)), Number(next));
  }
  const topics = [...new Set([...checkpoints.values()].flatMap((m) => [...m.keys()]))];
  const ends = await endOffsets(admin, topics);
  const byProjection: Record<string, number> = {};
  for (const [projection, byTopic] of checkpoints) {
    let lag = 0;
    for (const [topic, parts] of byTopic) {
      for (const [partition, end] of ends.get(topic) ?? []) lag += Math.max(0, end - (parts.get(partition) ?? 0));
    }
    byProjection[projection] = lag;
  }
  return { total: Object.values(byProjection).reduce((a, b) => a + b, 0), byProjection };
}

/** Consumer lag of every group whose id starts with `prefix`: end offset − committed offset, per topic. */
async function consumerLag(admin: Admin, prefix: string) {
  const { groups } = await admin.listGroups();
  const mine = groups.filter((g) => g.groupId.startsWith(prefix));
  const out: Record<string, { total: number; topics: Record<string, number> }> = {};
  for (const g of mine) {
    const committed = await admin.fetchOffsets({ groupId: g.groupId });
    const ends = await endOffsets(
      admin,
      committed.map((t) => t.topic),
    );
    const topics: Record<string, number> = {};
    for (const t of committed) {
      topics[t.topic] = t.partitions.reduce((sum, p) => {
        const end = ends.get(t.topic)?.get(p.partition) ?? 0;
        const at = Number(p.offset);
        return sum + (at < 0 ? end : Math.max(0, end - at));
      }, 0);
    }
    out[g.groupId] = { total: Object.values(topics).reduce((a, b) => a + b, 0), topics };
  }
  return out;
}

async function part<T>(fn: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await fn();
  } catch (err) {
    return { error: messageOf(err) };
  }
}

interface FullHealthDeps {
  pool: Pool;
  redis: Redis;
  admin: Admin;
  prefix: string;
  /** Package version of this build. */
  version: string;
}

/** The full report of `/health`. */
export async function fullHealth(d: FullHealthDeps) {
  const [postgres, timescale, redis, kafka, consumers, projections, jobs, disk] = await Promise.all([
    part(async () => {
      const { rows } = await d.pool.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      return { version: rows[0]!.v };
    }),
    part(() => timescaleReport(d.pool)),
    part(async () => {
      const info = await d.redis.info('server');
      const memory = await d.redis.info('memory');
      return {
        version: /redis_version:(\S+)/.exec(info)?.[1] ?? null,
        used_memory_bytes: Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? NaN),
      };
    }),
    part(async () => {
      const c = await d.admin.describeCluster();
      // kafkajs exposes no broker version; the cluster id and brokers identify what answered.
      return { cluster_id: c.clusterId, brokers: c.brokers.length, controller: c.controller };
    }),
    part(() => consumerLag(d.admin, d.prefix)),
    part(() => projectionLag(d.pool, d.admin, d.redis, d.prefix)),
    part(() => jobQueues(d.pool)),
    part(async () => {
      const { rows } = await d.pool.query<{ setting: string }>(
        "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
      );
      const dir = rows[0]?.setting;
      if (!dir) return { error: 'data_directory is not readable by this role' };
      // Only meaningful when PostgreSQL runs on this host (the local stack); elsewhere it says so.
      const s = await statfs(dir).catch(() => undefined);
      return s
        ? { path: dir, free_bytes: s.bavail * s.bsize, total_bytes: s.blocks * s.bsize }
        : { path: dir, error: 'not on this host' };
    }),
  ]);
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    status: 'up',
    version: d.version,
    node: process.version,
    uptime_s: Math.round(process.uptime()),
    postgres,
    timescaledb: timescale,
    redis,
    kafka,
    consumer_lag: consumers,
    projection_lag: projections,
    jobs,
    process: {
      pid: process.pid,
      rss_bytes: mem.rss,
      heap_used_bytes: mem.heapUsed,
      heap_total_bytes: mem.heapTotal,
      cpu_user_ms: Math.round(cpu.user / 1000),
      cpu_system_ms: Math.round(cpu.system / 1000),
    },
    host: {
      hostname: os.hostname(),
      cpus: os.cpus().length,
      load_avg: os.loadavg(),
      memory_total_bytes: os.totalmem(),
      memory_free_bytes: os.freemem(),
      postgres_data_disk: disk,
    },
  };
}

/**
 * TimescaleDB from its own views (absent, `installed: false`, on the plain path): the extension
 * version; per hypertable its chunks (and how many are compressed), total size, sizes before and after
 * compression and their ratio; the continuous aggregates; and every policy job with its last run
 * (timescaledb_information.jobs and job_stats).
 */
async function timescaleReport(pool: Pool) {
  const { rows } = await pool.query<{ extversion: string; on: boolean }>(
    "SELECT extversion, vigil_timescale() AS on FROM pg_extension WHERE extname = 'timescaledb'",
  );
  if (!rows[0]?.on) return { installed: false as const };
  const tables = await pool.query<{
    name: string;
    num_chunks: number;
    compression_enabled: boolean;
    size_bytes: string;
    chunk_interval: string | null;
    total_chunks: string | null;
    number_compressed_chunks: string | null;
    before_compression_total_bytes: string | null;
    after_compression_total_bytes: string | null;
  }>(
    `SELECT h.hypertable_name AS name, h.num_chunks, h.compression_enabled,
            hypertable_size(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass) AS size_bytes,
            (SELECT d.time_interval::text FROM timescaledb_information.dimensions d
              WHERE d.hypertable_schema = h.hypertable_schema AND d.hypertable_name = h.hypertable_name
              ORDER BY d.dimension_number LIMIT 1) AS chunk_interval,
            c.number_compressed_chunks, c.before_compression_total_bytes, c.after_compression_total_bytes
       FROM timescaledb_information.hypertables h
       LEFT JOIN LATERAL hypertable_compression_stats(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass) c
         ON true
      WHERE h.hypertable_schema = 'public'
      ORDER BY h.hypertable_name`,
  );
  const n = (v: string | null | undefined) => (v === null || v === undefined ? null : Number(v));
  const hypertables = tables.rows.map((t) => {
    const before = n(t.before_compression_total_bytes);
    const after = n(t.after_compression_total_bytes);
    return {
      name: t.name,
      chunk_interval: t.chunk_interval,
      chunks: Number(t.num_chunks),
      size_bytes: Number(t.size_bytes),
      compression_enabled: t.compression_enabled,
      compressed_chunks: n(t.number_compressed_chunks) ?? 0,
      before_compression_bytes: before,
      after_compression_bytes: after,
      compression_ratio: before !== null && after ? Math.round((before / after) * 100) / 100 : null,
    };
  });
  const caggs = await pool.query<{ view_name: string; materialized_only: boolean }>(
    `SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates
      WHERE view_schema = 'public' ORDER BY view_name`,
  );
  const jobs = await pool.query<{
    job_id: number;
    proc_name: string;
    target: string | null;
    scheduled: boolean;
    schedule_interval: string;
    last_run_status: string | null;
    last_successful_finish: Date | string | null;
    next_start: Date | string | null;
    total_runs: string | null;
    total_failures: string | null;
  }>(
    `SELECT j.job_id, j.proc_name, j.hypertable_name AS target, j.scheduled, j.schedule_interval::text AS schedule_interval,
            s.last_run_status, s.last_successful_finish, s.next_start, s.total_runs, s.total_failures
       FROM timescaledb_information.jobs j
       LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
      WHERE j.hypertable_name IS NOT NULL
      ORDER BY j.proc_name, j.hypertable_name`,
  );
  // The pool may parse timestamps as Date or hand them over as text; ±infinity (an unscheduled job) is null.
  const iso = (d: Date | string | null) => {
    const t = d === null ? NaN : new Date(d).getTime();
    return Number.isFinite(t) ? new Date(t).toISOString() : null;
  };
  return {
    installed: true as const,
    version: rows[0].extversion,
    hypertables,
    continuous_aggregates: caggs.rows,
    jobs: jobs.rows.map((j) => ({
      id: j.job_id,
      proc: j.proc_name,
      target: j.target,
      scheduled: j.scheduled,
      schedule_interval: j.schedule_interval,
      last_run_status: j.last_run_status,
      last_successful_finish: iso(j.last_successful_finish),
      next_start: iso(j.next_start),
      runs: n(j.total_runs) ?? 0,
      failures: n(j.total_failures) ?? 0,
    })),
  };
}

/** pg-boss queue depth: jobs per queue and state (pg-boss's own `pgboss.job` table); absent before pg-boss ran. */
async function jobQueues(pool: Pool) {
  const exists = await pool.query("SELECT 1 FROM pg_tables WHERE schemaname = 'pgboss' AND tablename = 'job'");
  if (!exists.rowCount) return { installed: false as const };
  const { rows } = await pool.query<{ name: string; state: string; n: string }>(
    "SELECT name, state::text AS state, count(*) AS n FROM pgboss.job WHERE state < 'completed' GROUP BY 1, 2 ORDER BY 1, 2",
  );
  const queues: Record<string, Record<string, number>> = {};
  for (const r of rows) (queues[r.name] ??= {})[r.state] = Number(r.n);
  return { installed: true as const, queues };
}
