import type { Runtime } from '../core/runtime';
import { started as markStarted } from '../core/metrics';
import { ProjectionRunner } from './runner';
import { readModels } from './index';
import { REDIS_PROJECTION, RedisProjectionRunner } from './redis/runner';

/** Every projection `vigil project` can run: the PostgreSQL read models and the Redis one. */
const projectionNames = (): string[] => [...Object.keys(readModels), REDIS_PROJECTION];

/**
 * `vigil project`: runs the named projections (all by default) until SIGTERM/SIGINT, in two consumer
 * groups at most: one for the PostgreSQL read models (projections/runner.ts: one transaction per
 * fetch across them), one for the Redis read model, both with the configured fetch settings.
 */
export async function startProjectionWorker(
  rt: Runtime,
  names: string[] = projectionNames(),
): Promise<(ProjectionRunner | RedisProjectionRunner)[]> {
  const known = projectionNames();
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) throw new Error(`unknown read model(s): ${unknown.join(', ')}; known: ${known.join(', ')}`);
  await rt.serde.register([]); // decoding fetches writer schemas by id on first sight
  const deps = {
    kafka: rt.kafka,
    serde: rt.serde,
    topics: rt.topics,
    log: rt.log,
    groupPrefix: rt.config.topicPrefix,
    tsWindow: rt.config.tsWindow,
    fetch: rt.config.projectionFetch,
  };
  const models = names.filter((n) => n !== REDIS_PROJECTION).map((n) => readModels[n]!);
  const runners: (ProjectionRunner | RedisProjectionRunner)[] = [];
  if (models.length > 0)
    runners.push(new ProjectionRunner(models, { ...deps, pool: rt.pool }, Object.keys(readModels)));
  // The Redis model serves live reads and carries little: it fetches whatever is there (1 byte), the
  // wait only bounds how often an idle group asks.
  const redisFetch = { minBytes: 1, maxWaitTimeInMs: rt.config.projectionFetch.maxWaitTimeInMs };
  if (names.includes(REDIS_PROJECTION))
    runners.push(new RedisProjectionRunner({ ...deps, fetch: redisFetch, redis: rt.redis, pool: rt.pool }));
  // One closer for all: the consumers leave their groups in parallel.
  const started: typeof runners = [];
  rt.lifecycle.onClose('projection runners', () => Promise.all(started.map((r) => r.stop())));
  for (const r of runners) {
    await r.start();
    started.push(r);
  }
  rt.log.info({ models: names }, 'projection worker running');
  markStarted(rt); // vigil_ready{role="project"} = 1
  return runners;
}
