import {
  ConfigResourceTypes,
  ConfigSource,
  Kafka,
  logLevel,
  type Admin,
  type IHeaders,
  type LogEntry,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { context, propagation } from '@opentelemetry/api';
import type { Config } from './config';
import type { TopicOptions } from '../schemas/topics';
import type { Logger } from './logger';
import { VigilError } from './errors';

export type { Kafka, Admin };

/** The Kafka client of a process; kafkajs logs go through the process logger. */
export function createKafka(cfg: Config['kafka'], log: Logger, role: string): Kafka {
  const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
    [logLevel.ERROR]: 'error',
    [logLevel.WARN]: 'warn',
    [logLevel.INFO]: 'info',
    [logLevel.DEBUG]: 'debug',
  };
  return new Kafka({
    clientId: `${cfg.clientId}-${role}`,
    brokers: cfg.brokers,
    // TLS and SASL (VIGIL_KAFKA_SSL*, VIGIL_KAFKA_SASL_*): absent = plaintext, unauthenticated.
    ...(cfg.ssl ? { ssl: cfg.ssl } : {}),
    ...(cfg.sasl ? { sasl: cfg.sasl as SASLOptions } : {}),
    logLevel: logLevel.WARN,
    // Backoff 0.2 s doubling to at most 5 s, about 50 s in all (kafkajs's default cap of 30 s left a
    // producer idle for half a minute after a failover had finished: the broker-kill drill's load).
    retry: { initialRetryTime: 200, maxRetryTime: 5_000, retries: 14 },
    logCreator:
      () =>
      ({ namespace, level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        // The broker answers CONCURRENT_TRANSACTIONS while it finishes the previous transaction's
        // markers; kafkajs retries it and succeeds, so it is not an error worth an SRE's attention.
        const routine = /concurrent operation on the same transaction/.test(String(rest.error ?? message));
        log[routine ? 'debug' : (levels[level] ?? 'info')]({ kafka: namespace, ...rest }, message);
      },
  });
}

/**
 * Creates the topics that do not exist yet (idempotent). An existing topic whose partition count
 * differs is an error: co-partitioned topics must agree, and Kafka cannot shrink a topic. An existing
 * topic whose planned configs (e.g. `retention.ms`) differ from what the broker holds is altered to
 * the plan (see `alignTopicConfigs`).
 */
export async function ensureTopics(admin: Admin, planned: Record<string, TopicOptions>): Promise<string[]> {
  const topics = await sizedToCluster(admin, planned);
  const existing = new Set(await admin.listTopics());
  const missing = Object.entries(topics).filter(([name]) => !existing.has(name));
  if (missing.length) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map(([topic, o]) => ({
          topic,
          numPartitions: o.partitions,
          replicationFactor: o.replicationFactor ?? -1,
          configEntries: Object.entries(o.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // On a cluster, the broker kafkajs asks for leaders may not know a topic the controller just
      // created (UNKNOWN_TOPIC_OR_PARTITION, which kafkajs's wait does not retry): wait for it here.
      if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
      await waitForMetadata(
        admin,
        missing.map(([name]) => name),
      );
    }
  }
  const present = Object.keys(topics).filter((t) => existing.has(t));
  if (present.length) {
    const meta = await admin.fetchTopicMetadata({ topics: present });
    for (const t of meta.topics) {
      const want = topics[t.name]?.partitions;
      if (want !== undefined && t.partitions.length !== want) {
        throw new VigilError(
          'CONFIG_INVALID',
          `topic ${t.name} has ${t.partitions.length} partitions, expected ${want} (co-partitioned topics must agree)`,
        );
      }
    }
    await alignTopicConfigs(admin, Object.fromEntries(present.map((t) => [t, topics[t]!.configs ?? {}])));
  }
  return missing.map(([name]) => name);
}

/** Polls topic metadata until every topic has a leader for each partition (30 s at most). */
async function waitForMetadata(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await admin
      .fetchTopicMetadata({ topics })
      .then((m) => m.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)))
      .catch((err: unknown) => {
        if (Date.now() > deadline) throw err;
        return false;
      });
    if (ok) return;
    if (Date.now() > deadline)
      throw new VigilError('KAFKA_UNAVAILABLE', `topics without leaders after 30 s: ${topics.join(', ')}`, {
        retriable: true,
      });
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Replication from the cluster's size where the plan leaves it open (replicationFactor 0 or absent):
 * 3 copies and `min.insync.replicas=2` once the cluster has three brokers (one may be lost without
 * refusing an acks=all write or losing an acknowledged one), else one copy per broker. A factor or
 * min ISR set in the plan (VIGIL_TOPIC_REPLICATION_FACTOR / _MIN_INSYNC_REPLICAS) is kept as is.
 */
export async function sizedToCluster(
  admin: Admin,
  planned: Record<string, TopicOptions>,
): Promise<Record<string, TopicOptions>> {
  const open = Object.values(planned).some((o) => !o.replicationFactor || !o.configs?.['min.insync.replicas']);
  if (!open) return planned;
  const brokers = (await admin.describeCluster()).brokers.length;
  return Object.fromEntries(Object.entries(planned).map(([name, o]) => [name, replicationFor(o, brokers)] as const));
}

/** The plan's replication for a cluster of `brokers` (pure; see sizedToCluster). */
export function replicationFor(o: TopicOptions, brokers: number): TopicOptions {
  const factor = o.replicationFactor || Math.min(3, Math.max(1, brokers));
  const configs = { ...o.configs };
  if (!configs['min.insync.replicas'] && factor >= 3) configs['min.insync.replicas'] = '2';
  return { ...o, replicationFactor: factor, configs };
}

/**
 * Sets the planned configs of existing topics where the broker holds another value; returns the
 * topics altered. AlterConfigs (what kafkajs offers) replaces a topic's whole set of per-topic
 * overrides, so the overrides the topic has already (set by hand, say) are sent along and kept.
 */
async function alignTopicConfigs(admin: Admin, plan: Record<string, Record<string, string>>): Promise<string[]> {
  const names = Object.keys(plan).filter((t) => Object.keys(plan[t]!).length > 0);
  if (!names.length) return [];
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
  });
  const altered: string[] = [];
  const resources = [];
  for (const r of described.resources) {
    const want = plan[r.resourceName] ?? {};
    const current = new Map(r.configEntries.map((e) => [e.configName, e]));
    if (Object.entries(want).every(([k, v]) => current.get(k)?.configValue === v)) continue;
    const overrides = Object.fromEntries(
      r.configEntries
        .filter((e) => e.configSource === ConfigSource.TOPIC_CONFIG && !e.readOnly && !e.isSensitive)
        .map((e) => [e.configName, e.configValue]),
    );
    const configEntries = Object.entries({ ...overrides, ...want }).map(([name, value]) => ({ name, value }));
    resources.push({ type: ConfigResourceTypes.TOPIC, name: r.resourceName, configEntries });
    altered.push(r.resourceName);
  }
  if (resources.length) await admin.alterConfigs({ validateOnly: false, resources });
  return altered;
}

/** Kafka headers carrying the active trace context (W3C `traceparent`, `tracestate`). */
export function traceHeaders(): IHeaders {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** Message key of every Vigil topic: the session id, UTF-8. */
export const keyOf = (event: { session_id: string }): Buffer => Buffer.from(event.session_id, 'utf8');

/**
 * A connected transactional producer whose transactional id is registered with its coordinator.
 * kafkajs sends InitProducerId with the transactional id at the producer's first `transaction()`,
 * not at `connect()` (which only takes an idempotent producer id). Until then the previous holder of
 * the id is not fenced and its open transaction not completed: a new owner that read the changelog
 * and the committed offsets right after `connect()` could see them move afterwards (the previous
 * owner committing once more), and both would emit the same outputs. An empty transaction begun and
 * aborted here (no request: nothing was added to it) makes that happen now.
 */
export async function connectTransactional(kafka: Kafka, transactionalId: string): Promise<Producer> {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const tx = await producer.transaction();
    await tx.abort();
  } catch (err) {
    await producer.disconnect().catch(() => {});
    throw err;
  }
  return producer;
}
