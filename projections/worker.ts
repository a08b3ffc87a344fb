import type { Runtime } from '../core/runtime';
import { ProjectionRunner } from './runner';
import { readModels } from './index';

/** `vigil project`: runs the named read models (all by default) until SIGTERM/SIGINT. */
export async function startProjectionWorker(
  rt: Runtime,
  names: string[] = Object.keys(readModels),
): Promise<ProjectionRunner[]> {
  const unknown = names.filter((n) => !readModels[n]);
  if (unknown.length)
    throw new Error(`unknown read model(s): ${unknown.join(', ')}; known: ${Object.keys(readModels).join(', ')}`);
  await rt.serde.register([]); // decoding fetches writer schemas by id on first sight
  const runners = names.map(
    (n) =>
      new ProjectionRunner(readModels[n]!, {
        kafka: rt.kafka,
        pool: rt.pool,
        serde: rt.serde,
        topics: rt.topics,
        log: rt.log,
        groupPrefix: rt.config.topicPrefix,
      }),
  );
  for (const r of runners) {
    await r.start();
    rt.lifecycle.onClose(`projection runner`, () => r.stop());
  }
  rt.log.info({ models: names }, 'projection worker running');
  return runners;
}
