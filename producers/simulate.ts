import type { Runtime } from '../core/runtime';
import { Publisher } from './publisher';
import { runSimulation, topicsOf, type SimulateOptions, type SimulationResult } from './simulator/run';

/**
 * `vigil simulate`: registers the schemas of every topic it writes, publishes the simulated sessions, prints each
 * session id as it starts, and flushes on shutdown.
 */
export async function simulate(rt: Runtime, opts: SimulateOptions, signal?: AbortSignal): Promise<SimulationResult> {
  await rt.serde.register(topicsOf(opts));
  const publisher = new Publisher(rt.kafka, rt.serde, rt.topics, { log: rt.log });
  await publisher.connect();
  rt.lifecycle.onClose('publisher', () => publisher.disconnect());
  rt.log.info({ ...opts, startTs: new Date(opts.startTs).toISOString() }, 'simulating');
  const result = await runSimulation(publisher, opts, signal);
  rt.log.info({ published: result.published }, 'simulation done');
  return result;
}
