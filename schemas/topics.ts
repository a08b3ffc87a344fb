import type { Config } from '../core/config';
import type { TopicOptions } from '../core/kafka';
import { topicNames } from './catalogue';

/**
 * Every topic Vigil uses and how it is created: all with the same partition count, so partition p of
 * each holds the same sessions (murmur2 of session_id). Dead letters and late events are kept 14 days;
 * the processor's state changelog is compacted (latest snapshot per session).
 */
export function topicPlan(cfg: Pick<Config, 'topicPrefix' | 'kafka'>): Record<string, TopicOptions> {
  const names = topicNames(cfg.topicPrefix);
  const partitions = cfg.kafka.partitions;
  const fortnight = String(14 * 24 * 3600 * 1000);
  return Object.fromEntries(
    Object.entries(names).map(([key, name]): [string, TopicOptions] => {
      const configs: Record<string, string> =
        key === 'dlq' || key === 'late'
          ? { 'retention.ms': fortnight }
          : key === 'changelog'
            ? { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000' }
            : {};
      return [name, { partitions, configs }];
    }),
  );
}
