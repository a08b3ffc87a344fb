import type { KafkaMessage } from 'kafkajs';
import { eventually, testConfig, testLogger, uniqueName } from '../test/support/env';
import { readAll } from '../test/support/stack';
import { createKafka, type Admin, type Kafka } from './kafka';
import type { Checkpointer } from './checkpoint';
import { VigilError } from './errors';
import type { Refusal } from './dlq';
import { Reactor, type Admission, type ReactorRecord } from './reactor';

/**
 * The reactor's contract with its checkpointer and handler, on real Kafka: a checkpointer kept in
 * memory, records that are JSON (anything else is undecodable), a handler that remembers what it got.
 */
describe('reactor (consume, decode, dead-letter, apply, checkpoint)', () => {
  const config = testConfig();
  const log = testLogger();
  let kafka: Kafka;
  let admin: Admin;
  const dlqTopic = `${config.topicPrefix}.dlq.v1`;
  const running: Reactor<string, void>[] = [];

  beforeAll(async () => {
    kafka = createKafka(config.kafka, log, 'test');
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: dlqTopic, numPartitions: 1 }], waitForLeaders: true });
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
  });
  afterAll(() => admin?.disconnect());

  /** A checkpointer in a Map (`<topic>:<partition>` → next offset), moved after `apply` succeeded. */
  const memoryCheckpointer = (initial: Record<string, bigint> = {}) => {
    const next = new Map(Object.entries(initial));
    const checkpointer: Checkpointer<void> = {
      read: (topic, partition) => Promise.resolve(next.get(`${topic}:${partition}`) ?? 0n),
      async commit(topic, partition, span, apply) {
        const result = await apply(undefined, span.from);
        next.set(`${topic}:${partition}`, span.next);
        return result;
      },
    };
    return { checkpointer, at: (topic: string, partition: number) => next.get(`${topic}:${partition}`) };
  };

  /** JSON decodes; anything else is refused in phase `decode`. */
  const admitJson = (_key: string, messages: readonly KafkaMessage[]): Promise<Admission> => {
    const good: Admission['good'] = [];
    const refused: Refusal[] = [];
    for (const message of messages) {
      try {
        good.push({ message, value: JSON.parse(String(message.value)) as unknown });
      } catch (cause) {
        refused.push({ message, phase: 'decode', err: new VigilError('EVENT_UNDECODABLE', 'not JSON', { cause }) });
      }
    }
    return Promise.resolve({ good, refused });
  };

  async function topicWith(partitions: number, values: Record<number, string[]>): Promise<string> {
    const topic = uniqueName(`${config.topicPrefix}.reactor.`);
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    for (const [partition, list] of Object.entries(values)) {
      await producer.send({ topic, messages: list.map((value) => ({ value, partition: Number(partition) })) });
    }
    await producer.disconnect();
    return topic;
  }

  async function start(
    topic: string,
    checkpointer: Checkpointer<void>,
    apply: (records: readonly ReactorRecord<string>[]) => Promise<void>,
  ) {
    const consumer = uniqueName('reactor-spec.');
    const reactor = new Reactor<string, void>({
      kafka,
      log,
      groupId: consumer,
      topics: new Map([[topic, 'source']]),
      fromBeginning: true,
      admit: admitJson,
      checkpointer,
      apply: (_, records) => apply(records),
      dlqTopic,
      consumer,
      spanName: 'reactor spec',
    });
    running.push(reactor);
    await reactor.start();
    return { reactor, consumer };
  }

  it('dead-letters an undecodable record with its reason and applies the records after it', async () => {
    const topic = await topicWith(1, { 0: ['{"n":1}', 'not json', '{"n":2}'] });
    const memory = memoryCheckpointer();
    const got: ReactorRecord<string>[] = [];
    const { reactor, consumer } = await start(topic, memory.checkpointer, (records) => {
      got.push(...records);
      return Promise.resolve();
    });

    await eventually(
      () => Promise.resolve(memory.at(topic, 0)),
      (at) => at === 3n,
    );
    expect(got.map((r) => [r.offset, r.value])).toEqual([
      ['0', { n: 1 }],
      ['2', { n: 2 }],
    ]);
    expect(reactor.applied).toBe(2);
    const letters = (await readAll(kafka, dlqTopic)).filter((d) => d.headers['vigil.dlq.consumer'] === consumer);
    expect(letters.map((d) => [String(d.value), d.headers['vigil.dlq.reason'], d.headers['vigil.dlq.phase']])).toEqual([
      ['not json', 'event_undecodable', 'decode'],
    ]);
    expect(letters[0]!.headers['vigil.dlq.source.offset']).toBe('1');
  });

  it('hands the handler only offsets past the checkpoint and skips a batch already applied', async () => {
    // Partition 0 is applied up to its end; partition 1 up to offset 2 (exclusive).
    const topic = await topicWith(2, {
      0: ['{"p":0}', '{"p":0}', '{"p":0}'],
      1: ['{"a":0}', '{"a":1}', '{"a":2}', '{"a":3}'],
    });
    const memory = memoryCheckpointer({ [`${topic}:0`]: 3n, [`${topic}:1`]: 2n });
    const got: ReactorRecord<string>[] = [];
    const { reactor, consumer } = await start(topic, memory.checkpointer, (records) => {
      got.push(...records);
      return Promise.resolve();
    });

    await eventually(
      () => Promise.resolve(memory.at(topic, 1)),
      (at) => at === 4n,
    );
    // The skipped batch still commits its Kafka offset: the group does not fetch it again.
    const committed = await eventually(
      async () => (await admin.fetchOffsets({ groupId: consumer, topics: [topic] }))[0]!.partitions,
      (ps) => ps.find((p) => p.partition === 0)?.offset === '3',
    );
    expect(committed.find((p) => p.partition === 0)?.offset).toBe('3');
    expect(got.map((r) => [r.partition, r.offset])).toEqual([
      [1, '2'],
      [1, '3'],
    ]);
    expect(reactor.applied).toBe(2);
    expect(memory.at(topic, 0)).toBe(3n);
  });

  it('fetches a batch again after a retriable error, and applies and checkpoints it once it succeeds', async () => {
    const topic = await topicWith(1, { 0: ['{"n":1}', '{"n":2}'] });
    const memory = memoryCheckpointer();
    const attempts: string[][] = [];
    const { reactor, consumer } = await start(topic, memory.checkpointer, (records) => {
      attempts.push(records.map((r) => r.offset));
      if (attempts.length === 1) {
        return Promise.reject(new VigilError('DATABASE_UNAVAILABLE', 'connection refused', { retriable: true }));
      }
      return Promise.resolve();
    });

    await eventually(
      () => Promise.resolve(memory.at(topic, 0)),
      (at) => at === 2n,
    );
    expect(attempts).toEqual([
      ['0', '1'],
      ['0', '1'],
    ]);
    expect(reactor.applied).toBe(2);
    const letters = (await readAll(kafka, dlqTopic)).filter((d) => d.headers['vigil.dlq.consumer'] === consumer);
    expect(letters).toEqual([]);
  });
});
