import type { Config } from './config';
import { createLogger, type Logger } from './logger';
import { Lifecycle } from './lifecycle';
import { createKafka, type Kafka } from './kafka';
import { AvroSerde } from './serde';
import { createPool, type Pool } from './db';
import { createRedis, type Redis } from './redis';
import { topicNames, type TopicNames } from '../schemas/catalogue';

/**
 * What a role gets from main: its config, logger and lifecycle, and lazily created clients (one of
 * each per process, closed on shutdown in reverse order of creation).
 */
export class Runtime {
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
  readonly topics: TopicNames;
  private kafkaClient?: Kafka;
  private serdeInstance?: AvroSerde;
  private poolInstance?: Pool;
  private redisInstance?: Redis;

  constructor(
    readonly config: Config,
    readonly role: string,
  ) {
    this.log = createLogger({ level: config.log.level, role });
    this.lifecycle = new Lifecycle(this.log);
    this.topics = topicNames(config.topicPrefix);
  }

  get kafka(): Kafka {
    return (this.kafkaClient ??= createKafka(this.config.kafka, this.log, this.role));
  }

  get serde(): AvroSerde {
    return (this.serdeInstance ??= new AvroSerde(
      this.config.schemaRegistryUrl,
      this.topics,
      this.config.schemaRegistryAuth,
    ));
  }

  get pool(): Pool {
    if (!this.poolInstance) {
      const pool = createPool(this.config.database, `vigil-${this.role}`);
      pool.on('error', (err) => this.log.warn({ err }, 'idle PostgreSQL client error'));
      this.lifecycle.onClose('pg pool', () => pool.end());
      this.poolInstance = pool;
    }
    return this.poolInstance;
  }

  get redis(): Redis {
    if (!this.redisInstance) {
      const redis = createRedis(this.config.redisUrl, { autoPipelining: true });
      redis.on('error', (err) => this.log.debug({ err: err.message }, 'redis error'));
      this.lifecycle.onClose('redis', () => redis.quit());
      this.redisInstance = redis;
    }
    return this.redisInstance;
  }
}
