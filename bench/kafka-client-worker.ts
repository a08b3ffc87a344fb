/**
 * The process under test of `npm run bench -- kafka-client`: an exactly-once consume-transform-produce
 * loop over one input topic, committing a transaction (output records + input offsets) at most every
 * `commitMs` per transaction scope, with one of two clients:
 * - `kafkajs`: Vigil's processor today. kafkajs cannot send the group generation and member id with
 *   TxnOffsetCommit (KIP-447), so zombie fencing needs one transactional producer per input partition
 *   and a transaction per partition: the scope is the partition.
 * - `ckjs`: @confluentinc/kafka-javascript (librdkafka) through its KafkaJS-compatible API, which sends
 *   offsets with the consumer's group metadata (KIP-447): one transactional producer for the process
 *   and one transaction for every partition it owns.
 * Outputs keep their input's partition, key and value (the value carries the feeder's send time).
 * Arguments: one JSON object in argv[2] (`WorkerArgs`). Prints its counters as a JSON line
 * `{"records":..,"transactions":..}` every second and on SIGTERM, then exits. The client library is loaded from `ckjsPath` (it is not a dependency of
 * Vigil: bench/kafka-client-setup.sh builds it under .local/).
 */
import { createRequire } from 'node:module';
import { Kafka, logLevel, type Producer } from 'kafkajs';

export interface WorkerArgs {
  mode: 'kafkajs' | 'ckjs';
  brokers: string[];
  inTopic: string;
  outTopic: string;
  groupId: string;
  txnPrefix: string;
  commitMs: number;
  ckjsPath?: string;
}

interface OutRecord {
  key: Buffer | null;
  value: Buffer | null;
  partition: number;
}

const stats = { records: 0, transactions: 0 };

async function kafkajsPerPartition(a: WorkerArgs): Promise<() => Promise<void>> {
  const kafka = new Kafka({ clientId: 'bench-kafka-client', brokers: a.brokers, logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({
    groupId: a.groupId,
    readUncommitted: false,
    sessionTimeout: 10_000,
    heartbeatInterval: 2_000,
  });
  const producers = new Map<number, Producer>();
  const pending = new Map<number, { records: OutRecord[]; next: string }>();
  const lastCommit = new Map<number, number>();
  const producerFor = async (p: number) => {
    let x = producers.get(p);
    if (!x) {
      x = kafka.producer({ transactionalId: `${a.txnPrefix}-${p}`, idempotent: true, maxInFlightRequests: 1 });
      await x.connect();
      producers.set(p, x);
    }
    return x;
  };
  const flush = async (p: number) => {
    const buf = pending.get(p);
    if (!buf?.records.length) return;
    pending.delete(p);
    const txn = await (await producerFor(p)).transaction();
    await txn.send({ topic: a.outTopic, messages: buf.records });
    await txn.sendOffsets({
      consumerGroupId: a.groupId,
      topics: [{ topic: a.inTopic, partitions: [{ partition: p, offset: buf.next }] }],
    });
    await txn.commit();
    stats.transactions++;
    lastCommit.set(p, Date.now());
  };
  await consumer.connect();
  await consumer.subscribe({ topic: a.inTopic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch, heartbeat }) => {
      const p = batch.partition;
      const buf = pending.get(p) ?? { records: [], next: '0' };
      for (const m of batch.messages) buf.records.push({ key: m.key, value: m.value, partition: p });
      stats.records += batch.messages.length;
      if (batch.messages.length) buf.next = (BigInt(batch.lastOffset()) + 1n).toString();
      pending.set(p, buf);
      if (Date.now() - (lastCommit.get(p) ?? 0) >= a.commitMs) await flush(p);
      await heartbeat();
    },
  });
  return async () => {
    await consumer.disconnect();
    await Promise.all([...producers.values()].map((x) => x.disconnect()));
  };
}

/** The part of @confluentinc/kafka-javascript's KafkaJS-compatible API this loop uses. */
interface CkjsTxn {
  send(r: { topic: string; messages: OutRecord[] }): Promise<unknown>;
  sendOffsets(o: {
    consumer: unknown;
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }): Promise<void>;
  commit(): Promise<void>;
}
interface CkjsModule {
  KafkaJS: {
    Kafka: new (c: object) => {
      consumer(c: object): {
        connect(): Promise<void>;
        subscribe(s: { topics: string[] }): Promise<void>;
        run(r: {
          eachBatch: (p: {
            batch: { partition: number; messages: { key: Buffer | null; value: Buffer | null; offset: string }[] };
          }) => Promise<void>;
        }): Promise<void>;
        disconnect(): Promise<void>;
      };
      producer(c: object): { connect(): Promise<void>; transaction(): Promise<CkjsTxn>; disconnect(): Promise<void> };
    };
  };
}

async function ckjsPerProcess(a: WorkerArgs): Promise<() => Promise<void>> {
  if (!a.ckjsPath) throw new Error('ckjs mode needs ckjsPath (run bench/kafka-client-setup.sh)');
  const ckjs = createRequire(__filename)(a.ckjsPath) as CkjsModule;
  const kafka = new ckjs.KafkaJS.Kafka({ kafkaJS: { brokers: a.brokers, logLevel: 1 } });
  const consumer = kafka.consumer({
    kafkaJS: { groupId: a.groupId, autoCommit: false, fromBeginning: true, sessionTimeout: 10_000 },
    'isolation.level': 'read_committed',
  });
  const producer = kafka.producer({
    kafkaJS: { transactionalId: a.txnPrefix, idempotent: true, maxInFlightRequests: 1 },
  });
  let records: OutRecord[] = [];
  let next = new Map<number, string>();
  let lastCommit = 0;
  const flush = async () => {
    if (!records.length) return;
    const out = records;
    const offsets = next;
    records = [];
    next = new Map();
    const txn = await producer.transaction();
    await txn.send({ topic: a.outTopic, messages: out });
    await txn.sendOffsets({
      consumer,
      topics: [{ topic: a.inTopic, partitions: [...offsets].map(([partition, offset]) => ({ partition, offset })) }],
    });
    await txn.commit();
    stats.transactions++;
    lastCommit = Date.now();
  };
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [a.inTopic] });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) records.push({ key: m.key, value: m.value, partition: batch.partition });
      stats.records += batch.messages.length;
      const last = batch.messages.at(-1);
      if (last) next.set(batch.partition, (BigInt(last.offset) + 1n).toString());
      if (Date.now() - lastCommit >= a.commitMs) await flush();
    },
  });
  return async () => {
    await consumer.disconnect();
    await producer.disconnect();
  };
}

async function main() {
  const a = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs;
  const stop = a.mode === 'ckjs' ? await ckjsPerProcess(a) : await kafkajsPerPartition(a);
  process.stdout.write('started\n');
  setInterval(() => process.stdout.write(`${JSON.stringify(stats)}\n`), 1_000).unref();
  process.once('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify(stats)}\n`);
    void stop().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 10_000).unref();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
