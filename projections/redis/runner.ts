import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Pool } from '../../core/db';
import type { Redis } from '../../core/redis';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { VigilError, messageOf } from '../../core/errors';
import { deadLetterRefusals, type Refusal } from '../../core/dlq';
import { dataErrorMessage, findOffenders, isDataError } from '../../core/data-error';
import { SessionOwners } from '../../core/session-owners';
import type { TopicKey, TopicNames } from '../../schemas/catalogue';
import type { TsWindow } from '../../schemas/rules';
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
import { admit } from '../screen';

/**
 * Applies the Redis read model from Kafka (`read_committed`), one batch per topic-partition:
 * decodes (undecodable records are dead-lettered, as in the PostgreSQL runner), runs the batch's
 * guarded scripts in one MULTI/EXEC (readers see a batch whole), and only after every script
 * succeeded moves its own checkpoint, a Redis hash `<prefix>:projection:redis:checkpoints`
 * (`<topic>:<partition>` → next offset). On (re)assignment it seeks to that checkpoint; Kafka's
 * committed offset is a hint. A crash between the scripts and the checkpoint re-applies the batch,
 * which changes nothing: every script is guarded by event time or event id. Keeping the checkpoint
 * in Redis means a Redis that lost its data also lost its checkpoint, and is rebuilt from the topics.
 *
 * Poison never stops a partition (issue 11): undecodable records, records breaking the rule table and
 * records naming a session another tenant owns are dead-lettered before apply (../screen.ts; the
 * owners live in PostgreSQL, hence the pool); a script failing with a Redis reply error over a
 * record's data (core/data-error.ts) has its record found by splitting the batch and dead-lettered
 * (DATA_ERROR, phase `project`). Connection errors are transient: the batch fails and kafkajs retries it.
 */
export interface RedisProjectionRunnerDeps {
  /** The processor's accepted ts window (schemas/rules.ts), checked on externally written topics; absent: not checked. */
  tsWindow?: TsWindow;
  kafka: Kafka;
  redis: Redis;
  /** PostgreSQL, for session ownership (core/session-owners.ts). */
  pool: Pool;
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
  /** What `admit` needs: the serde, the shared session owners, the ts window. */
  private readonly screening: Parameters<typeof admit>[0];
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
    this.screening = { serde: deps.serde, owners: new SessionOwners(deps.pool), tsWindow: deps.tsWindow };
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
      const messageAt = new Map(batch.messages.map((m) => [m.offset, m]));
      // Decoding and screening (rule table, ts window, session ownership): refused records never
      // reach the model. Records before the checkpoint were applied before: a redelivery.
      const fresh = batch.messages.filter((m) => BigInt(m.offset) >= done);
      const { good, refused } = await admit(this.screening, key, fresh);
      const records: ProjectedRecord[] = good.map((a) => ({
        topic: key,
        partition: batch.partition,
        offset: a.message.offset,
        value: a.value,
      }));
      const attributes = {
        'messaging.destination.name': batch.topic,
        'messaging.destination.partition.id': batch.partition,
      };
      await inBatchSpan(`project ${REDIS_PROJECTION}`, batch.messages, attributes, async () => {
        let bad = 0;
        try {
          await this.apply(projectRedis(records, this.options));
        } catch (err) {
          if (!isDataError(err)) throw err; // connection errors: the batch is retried whole
          this.deps.log.warn(
            { projection: REDIS_PROJECTION, topic: batch.topic, partition: batch.partition, err: messageOf(err) },
            'batch failed with a data error; splitting it to find the offending records',
          );
          // Every script is guarded and idempotent, so re-running the parts that did apply is harmless.
          const offenders = await findOffenders(records, (part) => this.apply(projectRedis(part, this.options)), {
            knownBad: true,
          });
          bad = offenders.length;
          for (const o of offenders) {
            const err = new VigilError('DATA_ERROR', dataErrorMessage(o.err), { cause: o.err });
            refused.push({ message: messageAt.get(o.item.offset)!, phase: 'project', err });
          }
        }
        // Dead letters once the scripts succeeded (a retried connection error sends none) and before
        // the checkpoint moves past them: a crash in between re-applies the batch and dead-letters them
        // again (a duplicate dead letter at worst, never a lost one).
        refused.sort((a, b) => (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
        await this.deadLetter(batch.topic, batch.partition, refused);
        await this.deps.redis.hset(this.checkpointKey, field, next.toString());
        this.applied += records.length - bad;
      });
    }
    resolveOffset(batch.lastOffset());
    await commitOffsetsIfNecessary();
    await heartbeat();
  }

  private deadLetter(topic: string, partition: number, items: readonly Refusal[]): Promise<void> {
    const { producer } = this;
    const to = {
      producer,
      dlqTopic: this.deps.topics.dlq,
      log: this.deps.log,
      consumer: `projection.${REDIS_PROJECTION}`,
    };
    return deadLetterRefusals(to, topic, partition, items);
  }

  private async checkpoint(field: string): Promise<bigint> {
    const v = await this.deps.redis.hget(this.checkpointKey, field);
    return v ? BigInt(v) : 0n;
  }

  private async apply(ops: RedisOp[]): Promise<void> {
    if (ops.length === 0) return;
    const multi = this.deps.redis.multi();
    for (const op of ops) (multi as unknown as ScriptCaller)[commandOf(op.script)]!(...op.keys, ...op.args);
    // A connection error rejects exec (transient: the batch is retried). A failed script is an entry
    // of the results, a Redis reply error (WRONGTYPE, a Lua error over its arguments): thrown as it is,
    // so core/data-error.ts tells a data error (the offending record is found and dead-lettered) from
    // a server that cannot serve now (LOADING, BUSY, OOM, ...: retried).
    const results = await multi.exec();
    if (!results) throw new Error('Redis read model: MULTI aborted');
    const failed = results.find(([err]) => err)?.[0];
    if (failed) throw failed;
  }
}
