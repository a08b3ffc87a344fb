import type { Runtime } from '../core/runtime';
import { started } from '../core/metrics';
import { ProcessorRunner } from './runner';
import { SessionOwners } from '../core/session-owners';
import { fatigueProcessor } from './fatigue/keyed-processor';

/**
 * `vigil process`: runs the fatigue processor until SIGTERM/SIGINT. Several instances share the
 * partitions (one consumer group, co-partitioned assignment).
 */
export async function startFatigueWorker(rt: Runtime): Promise<ProcessorRunner<unknown>> {
  await rt.serde.register(['scores', 'alerts']); // writer schemas; input schemas are fetched by id
  const runner = new ProcessorRunner(fatigueProcessor, {
    kafka: rt.kafka,
    serde: rt.serde,
    topics: rt.topics,
    log: rt.log,
    groupPrefix: rt.config.topicPrefix,
    tsWindow: rt.config.tsWindow,
    owners: new SessionOwners(rt.pool),
    ...rt.config.processor,
  });
  await runner.start();
  rt.lifecycle.onClose('fatigue processor', () => runner.stop());
  rt.log.info({ group: runner.groupId }, 'fatigue processor running');
  started(rt); // vigil_ready{role="process"} = 1
  return runner as ProcessorRunner<unknown>;
}
