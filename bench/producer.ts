import type { Kafka, Message } from 'kafkajs';
import { Publisher } from '../producers/publisher';
import { sessionEvents } from '../producers/simulator/session';
import type { EegBandPower } from '../schemas/types';
import { keyOf } from '../core/kafka';
import type { AvroSerde } from '../core/serde';
import type { TopicNames } from '../schemas/catalogue';
import { benchKafka } from './setup';
import { peakRssMiB, round, spread, table, writeResults } from './lib';

/**
 * Producer library at full speed against a raw batched kafkajs producer sending the same events
 * pre-encoded (same bytes, same topic, acks=all, idempotent, 1,000 messages per send, one send in
 * flight), alternating A/B runs in the same process so both see the same broker and machine state.
 * The library's calls carry 500 events each (a device batch) and are issued concurrently; its own
 * validation and encoding are inside the measured time.
 */
const EVENTS = 100_000;
const RUNS = 3;

export async function producerBench(): Promise<void> {
  const { kafka, serde, topics } = await benchKafka('producer');
  const events: EegBandPower[] = [];
  for (let i = 0; events.length < EVENTS; i++) {
    for (const e of sessionEvents({
      seed: 5,
      index: i,
      tenantId: 'bench',
      startTs: Date.UTC(2026, 0, 1),
      durationMs: 120_000,
      profile: 'drowsy',
    })) {
      if (e.topic === 'eeg') events.push(e.event as EegBandPower);
    }
  }
  events.length = EVENTS;
  const encoded: Message[] = events.map((e) => ({ key: keyOf(e), value: serde.encode('eeg', e) }));

  const raw: number[] = [];
  const lib: number[] = [];
  const rss: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    raw.push(await rawRun(kafka, topics.eeg, encoded));
    lib.push(await libraryRun(kafka, serde, topics, events));
    rss.push(Math.round(process.memoryUsage().rss / 2 ** 20));
  }
  const ratios = lib.map((l, i) => l / raw[i]!);
  const json = {
    events_per_run: EVENTS,
    raw_events_per_s: spread(raw),
    library_events_per_s: spread(lib),
    library_to_raw_ratio: spread(ratios),
    rss_mib_after_each_run: rss,
    peak_rss_mib: peakRssMiB(),
    goal: 'library >= 70% of raw',
  };
  writeResults(
    'producer',
    json,
    table(
      ['producer', 'events/s median', 'min-max', 'runs'],
      [
        [
          'raw kafkajs, pre-encoded, 1000/send',
          round(json.raw_events_per_s.median),
          `${round(json.raw_events_per_s.min)}-${round(json.raw_events_per_s.max)}`,
          RUNS,
        ],
        [
          'Publisher (validate+encode+batch)',
          round(json.library_events_per_s.median),
          `${round(json.library_events_per_s.min)}-${round(json.library_events_per_s.max)}`,
          RUNS,
        ],
      ],
    ) +
      `\n\nLibrary / raw (paired runs): median ${(json.library_to_raw_ratio.median * 100).toFixed(0)}% (${(json.library_to_raw_ratio.min * 100).toFixed(0)}-${(json.library_to_raw_ratio.max * 100).toFixed(0)}%); goal >= 70%.` +
      `\nRSS after each run (MiB): ${rss.join(', ')}; peak RSS ${json.peak_rss_mib} MiB (one process: producer + both variants).`,
  );
}

async function rawRun(kafka: Kafka, topic: string, messages: Message[]): Promise<number> {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < messages.length; i += 1000) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 1000) });
  }
  const s = (performance.now() - t0) / 1000;
  await producer.disconnect();
  return messages.length / s;
}

async function libraryRun(kafka: Kafka, serde: AvroSerde, topics: TopicNames, events: EegBandPower[]): Promise<number> {
  const publisher = new Publisher(kafka, serde, topics);
  await publisher.connect();
  const t0 = performance.now();
  const calls: Promise<void>[] = [];
  for (let i = 0; i < events.length; i += 500) calls.push(publisher.publish('eeg', events.slice(i, i + 500)));
  await Promise.all(calls);
  const s = (performance.now() - t0) / 1000;
  await publisher.disconnect();
  return events.length / s;
}
