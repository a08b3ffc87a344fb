import type { Kafka } from 'kafkajs';
import type { Pool } from '../../core/db';
import type { Redis } from '../../core/redis';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { Reactor } from '../../core/reactor';
import { redisHashCheckpointer } from '../../core/checkpoint';
import { redisKeys } from '../../core/redis-keys';
import type { TopicKey, TopicNames } from '../../schemas/catalogue';
import type { TsWindow } from '../../schemas/rules';
import { defaultRedisModelOptions, projectRedis, redisTopics, type RedisModelOptions, type RedisOp } from './model';
import { redisScripts } from './scripts';
import { admitWith } from '../screen';

/**
 * Applies the Redis read model from Kafka (docs/design.md §6): the core/reactor.ts loop with a Redis
 * hash as checkpointer, `<prefix>:projection:redis:checkpoints` (`<topic>:<partition>` → next offset),
 * group `<prefix>.projection.redis`, from the topics' beginning. A batch's guarded scripts run in one
 * MULTI/EXEC (readers see a batch whole); only after every script succeeded and the dead letters are
 * out does the checkpoint move. A crash in between re-applies the batch, which changes nothing: every
 * script is guarded by event time or event id. Keeping the checkpoint in Redis means a Redis that lost
 * its data also lost its checkpoint, and is rebuilt from the topics.
 *
 * Poison never stops a partition (issue 11): undecodable records, records breaking the rule table and
 * records naming a session another tenant owns are dead-lettered before apply (../screen.ts; the
 * owners live in PostgreSQL, hence the pool); a script failing with a Redis reply error over a
 * record's data (core/data-error.ts) has its record found by splitting the batch and dead-lettered
 * (DATA_ERROR, phase `project`). Connection errors are transient: the batch fails and is retried.
 */
interface RedisProjectionRunnerDeps {
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
  /** Fetch settings (core/config.ts `projectionFetch`); absent: kafkajs's defaults. */
  fetch?: { minBytes: number; maxWaitTimeInMs: number };
}

export const REDIS_PROJECTION = 'redis';

type ScriptCaller = Record<string, (...args: string[]) => unknown>;
/** The client method a script is defined as (prefixed: never a Redis command's name). */
const commandOf = (script: string) => `vigil_${script}`;

export class RedisProjectionRunner {
  private readonly reactor: Reactor<TopicKey, void>;

  constructor(private readonly deps: RedisProjectionRunnerDeps) {
    const options = { ...defaultRedisModelOptions, ...deps.options, prefix: deps.keyPrefix ?? deps.groupPrefix };
    for (const [name, s] of Object.entries(redisScripts)) {
      if (!(commandOf(name) in deps.redis)) deps.redis.defineCommand(commandOf(name), s);
    }
    this.reactor = new Reactor({
      kafka: deps.kafka,
      log: deps.log,
      groupId: `${deps.groupPrefix}.projection.${REDIS_PROJECTION}`,
      topics: new Map(redisTopics.map((k) => [deps.topics[k], k])),
      fromBeginning: true,
      admit: admitWith(deps),
      checkpointer: redisHashCheckpointer(deps.redis, redisKeys(options.prefix).checkpoints(REDIS_PROJECTION)),
      // Every script is guarded and idempotent, so re-running the parts of a split batch that did apply is harmless.
      apply: (_, records) => this.run(projectRedis(records, options)),
      dlqTopic: deps.topics.dlq,
      consumer: `projection.${REDIS_PROJECTION}`,
      spanName: `project ${REDIS_PROJECTION}`,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
  }

  /** Records applied (not counting redeliveries dropped by the checkpoint, nor dead-lettered ones). */
  get applied(): number {
    return this.reactor.applied;
  }

  start(): Promise<void> {
    return this.reactor.start();
  }

  stop(): Promise<void> {
    return this.reactor.stop();
  }

  /** The scripts of one batch (or part of it) in one MULTI/EXEC. */
  private async run(ops: RedisOp[]): Promise<void> {
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
