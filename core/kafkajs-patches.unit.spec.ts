/**
 * The kafkajs patches (patches/kafkajs+2.2.4.patch, applied by `npm ci`'s postinstall).
 *
 * The send path (kafkajs issue #1303): a send whose
 * first attempt failed on one broker and succeeded on another must, on its retry, send every
 * partition not yet acknowledged to its current leader, even when that leader is a broker that
 * answered the first attempt. Upstream skipped such a broker, and the send resolved with messages
 * never written: the acknowledged-but-missing events of the broker-kill drill.
 *
 * Pure units: kafkajs's own functions with a fake cluster and brokers (no network).
 */
import type { Message } from 'kafkajs';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internal modules have no types */
const createSendMessages = require('kafkajs/src/producer/sendMessages') as (deps: unknown) => SendMessages;
const createRetry = require('kafkajs/src/retry') as (opts: object) => unknown;
const createEosManager = require('kafkajs/src/producer/eosManager') as (deps: object) => {
  initProducerId: () => Promise<void>;
  getProducerId: () => number;
};
const createAdmin = require('kafkajs/src/admin') as (deps: object) => {
  fetchTopicOffsets: (topic: string) => Promise<{ partition: number; high: string; low: string }[]>;
};
const { createLogger, LEVELS } = require('kafkajs/src/loggers') as {
  createLogger: (o: object) => unknown;
  LEVELS: { NOTHING: number };
};
const { KafkaJSConnectionError, KafkaJSProtocolError, KafkaJSNonRetriableError } = require('kafkajs/src/errors') as {
  KafkaJSConnectionError: new (m: string) => Error;
  KafkaJSProtocolError: new (e: object) => Error;
  KafkaJSNonRetriableError: new (m: string) => Error;
};
/* eslint-enable @typescript-eslint/no-require-imports */

type SendMessages = (args: {
  acks: number;
  timeout?: number;
  topicMessages: { topic: string; messages: Message[] }[];
}) => Promise<{ topicName: string; partition: number; errorCode: number; baseOffset: string }[]>;

interface ProducedPartition {
  partition: number;
  messages: Message[];
}
interface ProduceRequest {
  topicData: { topic: string; partitions: ProducedPartition[] }[];
}

/** A broker that records what it was sent and answers as `answer` says (throwing fails the request). */
function fakeBroker(nodeId: number, answer: (attempt: number) => void) {
  const requests: ProduceRequest[] = [];
  return {
    nodeId,
    requests,
    produce: async (request: ProduceRequest) => {
      requests.push(request);
      answer(requests.length);
      return {
        topics: request.topicData.map(({ topic, partitions }) => ({
          topicName: topic,
          partitions: partitions.map(({ partition }) => ({ partition, errorCode: 0, baseOffset: '0' })),
        })),
      };
    },
  };
}

/**
 * Partitions 0 and 1 of `topic`; `leaders` gives each partition's leader. `onRefresh(n)` runs at the
 * n-th metadata refresh (from 1): where a test moves a leader, as the cluster would report it then.
 */
function fakeCluster(
  topic: string,
  brokers: Map<number, ReturnType<typeof fakeBroker>>,
  leaders: number[],
  onRefresh: (n: number) => void = () => {},
) {
  let refreshes = 0;
  return {
    targetTopics: new Set([topic]),
    refreshMetadataIfNecessary: async () => {},
    refreshMetadata: async () => onRefresh(++refreshes),
    addMultipleTargetTopics: async () => {},
    isConnected: () => true,
    removeBroker: () => {},
    findTopicPartitionMetadata: () => leaders.map((leader, partitionId) => ({ partitionId, leader })),
    findLeaderForPartitions: (_: string, partitions: string[]) => {
      const byLeader: Record<number, number[]> = {};
      for (const p of partitions.map(Number)) (byLeader[leaders[p]!] ??= []).push(p);
      return byLeader;
    },
    findBroker: async ({ nodeId }: { nodeId: string }) => brokers.get(Number(nodeId)),
  };
}

function fakeEosManager() {
  const sequences = new Map<string, number>();
  return {
    sequences,
    isTransactional: () => false,
    acquireBrokerLock: async () => {},
    releaseBrokerLock: async () => {},
    getProducerId: () => 7,
    getProducerEpoch: () => 0,
    getSequence: (topic: string, partition: number) => sequences.get(`${topic}/${partition}`) ?? 0,
    updateSequence: (topic: string, partition: number, by: number) =>
      sequences.set(`${topic}/${partition}`, (sequences.get(`${topic}/${partition}`) ?? 0) + by),
  };
}

const silentLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
/** The message key is its partition. */
const partitioner = ({ message }: { message: Message }) => Number(message.key);
const messagesFor = (partition: number, n: number): Message[] =>
  Array.from({ length: n }, (_, i) => ({ key: String(partition), value: `p${partition}-m${i}` }));

describe('kafkajs send retry (patched)', () => {
  it('sends a failed broker’s partitions on the retry to their new leader, though that broker answered the first attempt', async () => {
    const topic = 'eeg';
    const leaders = [1, 2]; // partition 0 on broker 1, partition 1 on broker 2
    const broker1 = fakeBroker(1, () => {
      throw new KafkaJSConnectionError('Connection closed'); // broker 1 is dead
    });
    const broker2 = fakeBroker(2, () => {});
    const brokers = new Map([
      [1, broker1],
      [2, broker2],
    ]);
    // The refresh right after the failure still names broker 1 (not yet fenced); by the end of the
    // backoff partition 0 has moved to broker 2, which the retry must read before it sends.
    const cluster = fakeCluster(topic, brokers, leaders, (n) => {
      if (n === 2) leaders[0] = 2;
    });
    const eos = fakeEosManager();
    const send = createSendMessages({
      logger: silentLogger,
      cluster,
      partitioner,
      eosManager: eos,
      retrier: createRetry({ retries: 3, initialRetryTime: 1, maxRetryTime: 5 }),
    });

    const acks = await send({
      acks: -1,
      topicMessages: [{ topic, messages: [...messagesFor(0, 3), ...messagesFor(1, 2)] }],
    });

    expect(acks.map((a) => a.partition).sort()).toEqual([0, 1]);
    expect(broker1.requests).toHaveLength(1); // the retry did not go to the former leader again
    const sentToBroker2 = broker2.requests.flatMap((r) => r.topicData.flatMap((t) => t.partitions));
    // Partition 1 once (first attempt), partition 0 once (the retry, with its three messages).
    expect(sentToBroker2.map((p) => [p.partition, p.messages.map((m) => m.value)])).toEqual([
      [1, ['p1-m0', 'p1-m1']],
      [0, ['p0-m0', 'p0-m1', 'p0-m2']],
    ]);
    // The failed request gave its sequence numbers back: each partition advanced by what it wrote.
    expect(eos.sequences.get('eeg/0')).toBe(3);
    expect(eos.sequences.get('eeg/1')).toBe(2);
  });

  it('does not send an acknowledged partition again when another broker fails', async () => {
    const topic = 'face';
    const leaders = [1, 2];
    const broker1 = fakeBroker(1, (attempt) => {
      if (attempt === 1) throw new KafkaJSConnectionError('Connection closed');
    });
    const broker2 = fakeBroker(2, () => {});
    const send = createSendMessages({
      logger: silentLogger,
      cluster: fakeCluster(
        topic,
        new Map([
          [1, broker1],
          [2, broker2],
        ]),
        leaders,
      ),
      partitioner,
      eosManager: fakeEosManager(),
      retrier: createRetry({ retries: 3, initialRetryTime: 1, maxRetryTime: 5 }),
    });

    const acks = await send({
      acks: -1,
      topicMessages: [{ topic, messages: [...messagesFor(0, 1), ...messagesFor(1, 1)] }],
    });

    expect(acks.map((a) => a.partition).sort()).toEqual([0, 1]);
    expect(broker1.requests).toHaveLength(2);
    expect(broker2.requests).toHaveLength(1);
  });
});

/**
 * The admin's end-offset look-up (the processor's freshness check, the drills' reads): after a leader
 * change, upstream gave up at once and kept its stale metadata, so every later call failed too.
 */
describe('kafkajs admin fetchTopicOffsets (patched)', () => {
  it('refreshes its metadata and retries after NOT_LEADER_FOR_PARTITION', async () => {
    let refreshed = 0;
    const cluster = {
      addTargetTopic: async () => {},
      refreshMetadataIfNecessary: async () => {},
      refreshMetadata: async () => void refreshed++,
      findTopicPartitionMetadata: () => [{ partitionId: 0, leader: 1 }],
      fetchTopicsOffset: async (requests: { topic: string; fromBeginning: boolean }[]) => {
        const { topic, fromBeginning } = requests[0]!;
        if (refreshed === 0) {
          throw new KafkaJSProtocolError({
            type: 'NOT_LEADER_FOR_PARTITION',
            code: 6,
            retriable: true,
            message: 'This server is not the leader for that topic-partition',
          });
        }
        return [{ topic, partitions: [{ partition: 0, offset: fromBeginning ? '3' : '42' }] }];
      },
    };
    const admin = createAdmin({
      logger: createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} }),
      retry: { retries: 3, initialRetryTime: 1, maxRetryTime: 5 },
      cluster,
    });

    await expect(admin.fetchTopicOffsets('eeg')).resolves.toEqual([
      { partition: 0, offset: '42', high: '42', low: '3' },
    ]);
    expect(refreshed).toBe(1);
  });
});

/**
 * An idempotent producer's connect asks the controller named in the metadata for its producer id.
 * With one broker of three killed and not yet fenced, the metadata may still name it: upstream gave up
 * on the first connection error (the broker-kill drill's simulator, when it started after the kill).
 */
describe('kafkajs producer id (patched)', () => {
  /** A cluster whose controller is dead for the first `deadLookups` look-ups, then a live broker. */
  function clusterWithDeadController(deadLookups: number, error: () => Error) {
    let lookups = 0;
    return {
      retry: { retries: 5, initialRetryTime: 1, maxRetryTime: 5 },
      lookups: () => lookups,
      refreshMetadataIfNecessary: async () => {},
      findControllerBroker: async () => {
        if (++lookups <= deadLookups) throw error();
        return { initProducerId: async () => ({ producerId: 4242, producerEpoch: 0 }) };
      },
    };
  }

  it('retries a connection error to a dead controller and gets its id from a live one', async () => {
    const cluster = clusterWithDeadController(2, () => new KafkaJSConnectionError('connect ECONNREFUSED'));
    const eos = createEosManager({ logger: silentLogger, cluster });

    await eos.initProducerId();

    expect({ producerId: eos.getProducerId(), lookups: cluster.lookups() }).toEqual({ producerId: 4242, lookups: 3 });
  });

  it('still gives up at once on an error no retry can mend', async () => {
    const cluster = clusterWithDeadController(1, () => new KafkaJSNonRetriableError('cluster authorization failed'));
    const eos = createEosManager({ logger: silentLogger, cluster });

    await expect(eos.initProducerId()).rejects.toThrow('cluster authorization failed');
    expect(cluster.lookups()).toBe(1);
  });
});
