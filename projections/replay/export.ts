import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { AvroSerde } from '../../core/serde';
import { VigilError } from '../../core/errors';
import { readRanges } from '../../core/read-range';
import { rangesOf } from '../../core/offset-ranges';
import { avroSchemaOf, topicKeys, type TopicKey, type TopicNames } from '../../schemas/catalogue';
import { csvColumns, csvHeader, csvRow, ndjsonLine, wanted, type ExportFormat, type ExportedRecord } from './format';

/** Re-exported for the rebuild (CLOCK_SKEW_MS) and a processor spec (partitionOfKey), which import them from here. */
export { CLOCK_SKEW_MS, partitionOfKey } from '../../core/offset-ranges';

interface ExportDeps {
  kafka: Kafka;
  serde: AvroSerde;
  topics: TopicNames;
}

export interface ExportOptions {
  /** A catalogue key (`eeg`, `scores`, ...) or its full topic name. */
  topic: string;
  /** Event time (epoch ms), inclusive. */
  from?: number;
  /** Event time (epoch ms), exclusive. */
  to?: number;
  session?: string;
  /** Only this tenant's events (an export requested through the API is its tenant's only). */
  tenant?: string;
  format: ExportFormat;
  signal?: AbortSignal;
}

export interface ExportResult {
  exported: number;
  /** Partitions read (with anything between their start and end offsets). */
  partitions: number;
  /** Records read, whether exported or not. */
  scanned: number;
  /** Records whose value could not be decoded: left out of the export, counted here. */
  undecodable: number;
  aborted: boolean;
}

/** The catalogue key of a topic given as a key or as its full name. */
function topicKeyOf(topics: TopicNames, topic: string): TopicKey {
  const key = topicKeys.find((k) => k === topic || topics[k] === topic);
  if (!key) {
    throw new VigilError(
      'REQUEST_INVALID',
      `unknown topic ${topic}; use one of ${topicKeys.join(', ')} or its full name`,
    );
  }
  return key;
}

/**
 * Writes the decoded events of a catalogue topic whose event time `ts` is in `[from, to)` (and of one
 * session) to `out`, as NDJSON (`vigil tail`'s lines) or CSV (header row, then one row per event).
 * Streams: one fetched batch at a time, and when `out` asks for it (write() returning false) the
 * consumer waits for `drain`, so memory stays bounded whatever the topic's size. Partitions are read
 * concurrently: order is kept within a partition (so within a session), not across partitions.
 * Does not end `out`. Usable from a job: returns counts; `signal` stops it early (`aborted`).
 */
export async function exportEvents(deps: ExportDeps, out: Writable, opts: ExportOptions): Promise<ExportResult> {
  const key = topicKeyOf(deps.topics, opts.topic);
  const topic = deps.topics[key];
  const ranges = await rangesOf(deps.kafka, topic, opts);
  const result: ExportResult = {
    exported: 0,
    partitions: ranges.filter((r) => BigInt(r.from) < BigInt(r.to)).length,
    scanned: 0,
    undecodable: 0,
    aborted: false,
  };
  const columns = csvColumns((avroSchemaOf(key) as { fields: { name: string }[] }).fields.map((f) => f.name));
  const write = async (chunk: string) => {
    if (chunk && !out.write(chunk)) await once(out, 'drain', opts.signal ? { signal: opts.signal } : {});
  };
  if (opts.format === 'csv') await write(csvHeader(columns));
  const sessionKey = opts.session === undefined ? undefined : Buffer.from(opts.session, 'utf8');

  const onBatch = async (partition: number, messages: KafkaMessage[]) => {
    let chunk = '';
    for (const m of messages) {
      result.scanned += 1;
      if (sessionKey && !(m.key && sessionKey.equals(m.key))) continue; // another session of the partition
      let value: Record<string, unknown>;
      try {
        value = (deps.serde.decodeKnown<Record<string, unknown>>(m.value) ?? (await deps.serde.decode(m.value))).value;
      } catch (err) {
        if (err instanceof VigilError && !err.retriable) {
          result.undecodable += 1;
          continue;
        }
        throw err;
      }
      if (!wanted(value, opts)) continue;
      const r: ExportedRecord = { partition, offset: m.offset, key: m.key?.toString('utf8') ?? null, value };
      chunk += opts.format === 'csv' ? csvRow(columns, r) : ndjsonLine(r);
      result.exported += 1;
    }
    await write(chunk);
  };

  try {
    const { aborted } = await readRanges(deps.kafka, topic, ranges, onBatch, { signal: opts.signal });
    result.aborted = aborted;
  } catch (err) {
    if (opts.signal?.aborted) result.aborted = true;
    else throw err;
  }
  return result;
}
