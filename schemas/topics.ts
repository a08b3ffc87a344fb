import { topicNames } from './catalogue';

/** How one topic is created (core/kafka.ts `ensureTopics` applies it). */
export interface TopicOptions {
  partitions: number;
  /** Copies of each partition; 0 or absent: from the cluster's size (core/kafka.ts `sizedToCluster`). */
  replicationFactor?: number;
  /** Extra topic configs, e.g. `{ 'cleanup.policy': 'compact' }`. */
  configs?: Record<string, string>;
}

/** What the plan depends on (a part of core/config.ts's Config). */
interface TopicPlanSettings {
  topicPrefix: string;
  kafka: { partitions: number; replicationFactor?: number; minInsyncReplicas?: number };
  topicRetentionMs?: number;
}

/**
 * Every topic Vigil uses and how it is created: all with the same partition count, so partition p of
 * each holds the same sessions (murmur2 of session_id). Dead letters and late events are kept 14 days;
 * the processor's state changelog is compacted (latest snapshot per session).
 *
 * The source-of-truth topics (every one but dlq, late, changelog and the what-if outputs) get an
 * explicit `retention.ms`, `VIGIL_TOPIC_RETENTION_MS` (default -1: kept forever), never the broker's
 * default (24 h in the shipped configs): a rebuild replays them, and what Kafka no longer holds is lost.
 */
/**
 * Topics written from outside (devices, the gateway, the API's commands) stamp records with the
 * broker's append time (`message.timestamp.type=LogAppendTime`): a producer sets CreateTime itself,
 * so only the append time is a clock no device controls. The processor accepts a record's `ts` only
 * within a window around it (VIGIL_TS_MAX_AHEAD_MS / VIGIL_TS_MAX_AGE_MS) and evicts idle sessions by
 * it; it is stored with the record, so a replay decides the same.
 */
export const isExternalInput = (key: string): boolean =>
  ['sessions', 'eeg', 'face', 'vehicle', 'game', 'commands'].includes(key);

const isSourceOfTruth = (key: string): boolean =>
  !['dlq', 'late', 'changelog', 'scoresWhatIf', 'alertsWhatIf'].includes(key);

export function topicPlan(cfg: TopicPlanSettings): Record<string, TopicOptions> {
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
      if (isSourceOfTruth(key)) configs['retention.ms'] = String(cfg.topicRetentionMs ?? -1);
      if (isExternalInput(key)) configs['message.timestamp.type'] = 'LogAppendTime';
      // Settings override what the cluster's size would give (0: decided by ensureTopics).
      if (cfg.kafka.minInsyncReplicas) configs['min.insync.replicas'] = String(cfg.kafka.minInsyncReplicas);
      return [name, { partitions, replicationFactor: cfg.kafka.replicationFactor || undefined, configs }];
    }),
  );
}
