import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Redis } from '../../core/redis';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { VigilError, isVigilError } from '../../core/errors';
import { deadLetter, type DeadLetterSource } from '../../core/dlq';
import type { TopicKey, TopicNames } from '../../schemas/catalogue';
import type { ProjectedRecord } from '../model';
import {
  defaultRedisModelOptions,
  projectRedis,
  redisKeys,
  redisTopics,
  type RedisModelOptions,
  type RedisOp,
} from './model';
import { redisScripts } from './scripts';
import { inBatchSpan } from '../../core/trace-batch';

/**
 * Applies the Redis read model from Kafka (`read_committed`), one batch per topic-partition:
 * decodes (undecodable records are dead-lettered, as in the PostgreSQL runner), runs the batch's
 * guarded scripts in one MULTI/EXEC (readers see a batch whole), and only after every script
 * succeeded moves its own checkpoint, a Redis hash `<prefix>:projection:redis:checkpoints`
 * (`<topic>:<partition>` → next offset). On (re)assignment it seeks to that checkpoint; Kafka's
 * committed offset is a hint. A crash between the scripts and the checkpoint re-applies the batch,
 * which changes nothing: every script is guarded by event time or event id. Keeping the checkpoint
 * in Redis means a Redis that lost its data also lost its checkpoint, and is rebuilt from the topics.
 * Redis errors are transient: the batch fails and kafkajs retries it.
 */
export interface RedisProjectionRunnerDeps {
  kafka: Kafka;
  redis: Redis;
  serde: AvroSerde;
  topics: TopicNames;
  log: Logger;
  groupPrefix: string;
  /** Prefix of every key (default: groupPrefix, i.e. the topic prefix, `vigil` in production). */
  keyPrefix?: string;
  options?: Partial<Omit<RedisModelOptions, 'prefix'>>;
}

export const REDIS_PROJECTION = 'redis';

type ScriptCaller = Record<string, (...args: string[]) => unknown>;
/** The client method a script is defined as (prefixed: never a Redis command's name). */
const commandOf = (script: string) => `vigil_${script}`;

export class RedisProjectionRunner {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly byName: Map<string, TopicKey>;
  private readonly options: RedisModelOptions;
  private readonly checkpointKey: string;
  /** Records applied (not counting redeliveries dropped by the checkpoint). */
  applied = 0;

  constructor(private readonly deps: RedisProjectionRunnerDeps) {
    this.consumer = deps.kafka.consumer({
      groupId: `${deps.groupPrefix}.projection.${REDIS_PROJECTION}`,
      sessionTimeout: 10_000,
      heartbeatInterval: 2_000,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    this.producer = deps.kafka.producer({ idempotent: true });
    this.byName = new Map(redisTopics.map((k) => [deps.topics[k], k]));
    this.options = { ...defaultRedisModelOptions, ...deps.options, prefix: deps.keyPrefix ?? deps.groupPrefix };
    this.checkpointKey = redisKeys(this.options.prefix).checkpoints(REDIS_PROJECTION);
    for (const [name, s] of Object.entries(redisScripts)) {
      if (!(commandOf(name) in deps.redis)) deps.redis.defineCommand(commandOf(name), s);
    }
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byName.keys()], fromBeginning: true });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      void this.seekToCheckpoints(e.payload.memberAssignment).catch((err) =>
        this.deps.log.warn(
          { err, projection: REDIS_PROJECTION },
          'seek to checkpoint failed; relying on the in-batch check',
        ),
      );
    });
    await this.consumer.run({ eachBatchAutoResolve: false, autoCommit: false, eachBatch: (p) => this.onBatch(p) });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private async seekToCheckpoints(assignment: Record<string, number[]>): Promise<void> {
    const wanted = Object.entries(assignment).flatMap(([topic, ps]) => ps.map((p) => ({ topic, partition: p })));
    if (wanted.length === 0) return;
    const offsets = await this.deps.redis.hmget(this.checkpointKey, ...wanted.map((w) => `${w.topic}:${w.partition}`));
    wanted.forEach((w, i) => {
      const offset = offsets[i];
      if (offset) this.consumer.seek({ ...w, offset });
    });
  }

  private async onBatch({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isStale }: EachBatchPayload) {
    if (batch.messages.length === 0 || isStale()) return;
    const key = this.byName.get(batch.topic)!;
    const field = `${batch.topic}:${batch.partition}`;
    const next = BigInt(batch.lastOffset()) + 1n;
    const done = await this.checkpoint(field);
    if (done < next) {
      const records: ProjectedRecord[] = [];
      const poison: { src: DeadLetterSource; err: VigilError }[] = [];
      for (const message of batch.messages) {
        if (BigInt(message.offset) < done) continue;
        try {
          const { value } = await this.deps.serde.decode(message.value);
          records.push({ topic: key, partition: batch.partition, offset: message.offset, value });
        } catch (err) {
          if (!isVigilError(err) || err.retriable) throw err; // transient: kafkajs retries the batch
          const consumer = `projection.${REDIS_PROJECTION}`;
          poison.push({
            src: { topic: batch.topic, partition: batch.partition, message, phase: 'decode', consumer },
            err,
          });
        }
      }
      await deadLetter(this.producer, this.deps.topics.dlq, poison);
      for (const p of poison) {
        this.deps.log.warn(
          { code: p.err.code, topic: batch.topic, offset: p.src.message.offset, reason: p.err.message },
          'dead-lettered',
        );
      }
      const attributes = {
        'messaging.destination.name': batch.topic,
        'messaging.destination.partition.id': batch.partition,
      };
      await inBatchSpan(`project ${REDIS_PROJECTION}`, batch.messages, attributes, async () => {
        await this.apply(projectRedis(records, this.options));
        await this.deps.redis.hset(this.checkpointKey, field, next.toString());
      });
      this.applied += records.length;
    }
    resolveOffset(batch.lastOffset());
    await commitOffsetsIfNecessary();
    await heartbeat();
  }

  private async checkpoint(field: string): Promise<bigint> {
    const v = await this.deps.redis.hget(this.checkpointKey, field);
    return v ? BigInt(v) : 0n;
  }

  private async apply(ops: RedisOp[]): Promise<void> {
    if (ops.length === 0) return;
    const multi = this.deps.redis.multi();
    for (const op of ops) (multi as unknown as ScriptCaller)[commandOf(op.script)]!(...op.keys, ...op.args);
    // A connection error rejects exec; a failed script is an entry of its results. Either way the
    // batch fails before its checkpoint moves, and kafkajs retries it (core/errors has no Redis code
    // yet, so these are plain errors: all of them transient).
    const results = await multi.exec();
    const failed = results ? results.find(([err]) => err)?.[0] : new Error('MULTI aborted');
    if (failed) throw new Error(`Redis read model: a script failed: ${failed.message}`, { cause: failed });
  }
}
