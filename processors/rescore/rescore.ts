import type { Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import type { AvroSerde } from '../../core/serde';
import type { Logger } from '../../core/logger';
import { VigilError } from '../../core/errors';
import { connectTransactional } from '../../core/kafka';
import { readRanges, readTopicRanges, type TopicPartitionRange } from '../../core/read-range';
import { rangesOf } from '../../core/offset-ranges';
import type { TopicKey, TopicNames } from '../../schemas/catalogue';
import type { AlertEvent, FatigueScored } from '../../schemas/types';
import { modelByName } from '../fatigue/models';
import { fatigueProcessorOf } from '../fatigue/keyed-processor';
import { Replay, type ReplayOutput, type ReplayRecord } from './replay';
import { recordRefusal, type TsWindow } from '../../schemas/rules';
import type { SessionOwners } from '../../core/session-owners';
import { Tally, compareModels, type SessionComparison } from './summary';

/**
 * `vigil rescore`: re-runs a fatigue model over recorded history into the what-if topics.
 *
 * 1. Reads the fatigue processor's input topics (telemetry, sessions, commands) from offsets-for-times
 *    of `from` (minus the clock margin of `vigil replay export`) up to the end offsets they have at
 *    the start, so it terminates however fast the topics grow; keeps the events whose `ts` is in
 *    `[from, to)` (and of `session`, reading only its partition).
 * 2. Replays them through the live processor's pure logic (Replay over the live runner's
 *    PartitionDriver: event-time merge, trust rules, de-duplication, steps and ticks) with the
 *    chosen model's config.
 * 3. Produces the scores and alerts, keyed by session_id like the live ones (same partition), to
 *    `fatigue.scores.whatif.v1` / `fatigue.alerts.whatif.v1` with a transactional producer, one
 *    transaction per `transactionMaxMessages` outputs. Event and alert ids hash the model version,
 *    session and event time, so a rerun writes the same bytes again (consumers de-duplicate by id,
 *    the what-if projection by (model_version, session_id, ts)). The transactional id is stable per
 *    request (model, range, session): a rerun fences a still-running earlier run of the same request.
 *    If a run fails midway, the transactions committed so far stay; rerunning completes the output.
 * 4. Tallies per session what it produced and the live scores and alerts topics over the same range
 *    (events with ts in [from, to]), for the comparison.
 *
 * Sessions that started before `from` are scored from their first event in the range (the baseline is
 * that range's first minutes): give ranges that cover whole sessions for a like-for-like comparison.
 */
export interface RescoreDeps {
  kafka: Kafka;
  serde: AvroSerde;
  topics: TopicNames;
  log: Logger;
  /** Prefix of the transactional id (the topic prefix, as the processor's group ids). */
  idPrefix: string;
  /** The live processor's accepted ts window (records outside it were dead-lettered live). */
  tsWindow?: TsWindow;
  /** The live processor's session owners (core/session-owners.ts); absent: a session's first record's tenant. */
  owners?: Pick<SessionOwners, 'claim'>;
}

export interface RescoreOptions {
  /** Event time (epoch ms), inclusive. */
  from: number;
  /** Event time (epoch ms), exclusive. */
  to: number;
  /** A model version of the registry (processors/fatigue/models.ts). */
  model: string;
  session?: string;
  signal?: AbortSignal;
  /** Outputs per transaction (default 5,000). */
  transactionMaxMessages?: number;
}

export interface RescoreResult {
  model: string;
  from: number;
  to: number;
  session?: string;
  /**
   * Input records read, kept (in range, of the session), stepped, handed back late, dropped as a
   * resend's copy, undecodable, refused (rule table or ts window: dead-lettered by the live processor), naming another tenant's session.
   */
  read: number;
  kept: number;
  stepped: number;
  late: number;
  duplicates: number;
  undecodable: number;
  refused: number;
  tenantMismatch: number;
  produced: { scores: number; alerts: number };
  transactions: number;
  topics: { scores: string; alerts: string };
  comparison: SessionComparison[];
  aborted: boolean;
  seconds: number;
}

const DEFAULT_TRANSACTION_MAX = 5_000;
/**
 * Flow control: an input partition whose records read are this much event time ahead of the slowest
 * still-open input of the same partition number waits. The merge holds records until every input has
 * passed them, so this bounds what it holds to about this span of the partition's data.
 */
const MAX_AHEAD_MS = 30_000;

type Decoded = { ts?: unknown; session_id?: unknown };

/** Decodes a record; null (counted as undecodable) when it cannot be decoded or its session_id is not its key. */
async function decodeRecord(serde: AvroSerde, m: KafkaMessage): Promise<Decoded | null> {
  try {
    const { value } = serde.decodeKnown<Decoded>(m.value) ?? (await serde.decode<Decoded>(m.value));
    // As the live runner: a record whose ts is missing or whose session_id is not its key is poison.
    if (typeof value.ts !== 'number' || value.session_id !== m.key?.toString('utf8')) return null;
    return value;
  } catch (err) {
    if (err instanceof VigilError && !err.retriable) return null;
    throw err;
  }
}

export async function rescore(deps: RescoreDeps, opts: RescoreOptions): Promise<RescoreResult> {
  const t0 = performance.now();
  const config = modelByName(opts.model);
  if (!(opts.from < opts.to)) {
    throw new VigilError('REQUEST_INVALID', `--from must be before --to (got ${opts.from} and ${opts.to})`);
  }
  const { kafka, serde, topics, log } = deps;
  const processor = fatigueProcessorOf(config);
  await serde.register(['scoresWhatIf', 'alertsWhatIf']);

  const result: RescoreResult = {
    model: config.model_version,
    from: opts.from,
    to: opts.to,
    ...(opts.session === undefined ? {} : { session: opts.session }),
    read: 0,
    kept: 0,
    stepped: 0,
    late: 0,
    duplicates: 0,
    undecodable: 0,
    refused: 0,
    tenantMismatch: 0,
    produced: { scores: 0, alerts: 0 },
    transactions: 0,
    topics: { scores: topics.scoresWhatIf, alerts: topics.alertsWhatIf },
    comparison: [],
    aborted: false,
    seconds: 0,
  };
  const inRange = (v: { ts?: unknown; session_id?: unknown }): v is { ts: number; session_id: string } =>
    typeof v.ts === 'number' &&
    v.ts >= opts.from &&
    v.ts < opts.to &&
    (opts.session === undefined || v.session_id === opts.session);

  // Where to read each input topic, and per partition the inputs with nothing to read there.
  const keyOfTopic = new Map<string, TopicKey>(processor.inputs.map((k) => [topics[k], k]));
  const ranges: TopicPartitionRange[] = [];
  for (const key of processor.inputs) {
    for (const r of await rangesOf(kafka, topics[key], { from: opts.from, session: opts.session }))
      ranges.push({ topic: topics[key], ...r });
  }
  const emptyInputs = (partition: number): TopicKey[] =>
    processor.inputs.filter((k) => {
      const r = ranges.find((x) => x.topic === topics[k] && x.partition === partition);
      return !r || BigInt(r.from) >= BigInt(r.to);
    });

  const whatIf = new Tally(config.model_version);
  const pending: { scores: Message[]; alerts: Message[] } = { scores: [], alerts: [] };
  const replay = new Replay(
    processor,
    (o: ReplayOutput) => {
      const key = o.value.session_id;
      if (o.topic === 'scores') {
        const e = o.value as FatigueScored;
        pending.scores.push({ key, value: serde.encode('scoresWhatIf', e) });
        if (e.ts >= opts.from && e.ts <= opts.to) whatIf.addScore(e);
      } else {
        const e = o.value as AlertEvent;
        pending.alerts.push({ key, value: serde.encode('alertsWhatIf', e) });
        if (e.ts >= opts.from && e.ts <= opts.to) whatIf.addAlert(e);
      }
    },
    emptyInputs,
  );

  const transactionalId = [
    deps.idPrefix,
    'rescore',
    config.model_version,
    new Date(opts.from).toISOString(),
    new Date(opts.to).toISOString(),
    ...(opts.session === undefined ? [] : [opts.session]),
  ].join('.');
  const producer: Producer = await connectTransactional(kafka, transactionalId);
  const max = opts.transactionMaxMessages ?? DEFAULT_TRANSACTION_MAX;

  /** Commits the pending outputs in one transaction (nothing when there are none). */
  const commit = async (): Promise<void> => {
    const n = pending.scores.length + pending.alerts.length;
    if (n === 0) return;
    const topicMessages = [
      { topic: topics.scoresWhatIf, messages: pending.scores },
      { topic: topics.alertsWhatIf, messages: pending.alerts },
    ].filter((t) => t.messages.length > 0);
    const tx = await producer.transaction();
    try {
      await tx.sendBatch({ acks: -1, topicMessages });
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => {});
      throw err;
    }
    result.produced.scores += pending.scores.length;
    result.produced.alerts += pending.alerts.length;
    result.transactions += 1;
    pending.scores = [];
    pending.alerts = [];
  };
  const outputsPending = () => pending.scores.length + pending.alerts.length;

  // Per partition number, per input topic: the highest ts read so far (kept or not), and which are done.
  const readTs = new Map<number, Map<string, number>>();
  const reachedEnd = new Set<string>();
  for (const r of ranges) if (BigInt(r.from) >= BigInt(r.to)) reachedEnd.add(`${r.partition}@${r.topic}`);
  const ahead = (topic: string, partition: number): boolean => {
    const mine = readTs.get(partition)?.get(topic) ?? -Infinity;
    let slowest = Infinity;
    for (const key of processor.inputs) {
      const t = topics[key];
      if (t === topic || reachedEnd.has(`${partition}@${t}`)) continue;
      slowest = Math.min(slowest, readTs.get(partition)?.get(t) ?? -Infinity);
    }
    return mine - slowest > MAX_AHEAD_MS;
  };

  try {
    const onBatch = async (topic: string, partition: number, messages: KafkaMessage[]) => {
      const key = keyOfTopic.get(topic)!;
      const records: ReplayRecord[] = [];
      let seen = readTs.get(partition);
      if (!seen) readTs.set(partition, (seen = new Map()));
      for (const m of messages) {
        result.read += 1;
        const value = await decodeRecord(serde, m);
        if (value === null) {
          result.undecodable += 1;
          continue;
        }
        if (typeof value.ts === 'number' && value.ts > (seen.get(topic) ?? -Infinity)) seen.set(topic, value.ts);
        if (!inRange(value)) continue;
        // What the live runner dead-lettered (rule table, ts window) never reached a session there.
        const appendTs = Number(m.timestamp);
        if (recordRefusal(key, value, appendTs, deps.tsWindow)) {
          result.refused += 1;
          continue;
        }
        records.push({ offset: m.offset, session: value.session_id, ts: value.ts, appendTs, value });
      }
      result.kept += records.length;
      // The live runner's owners (session_owners), claimed the same way when rescore has them.
      if (deps.owners && records.length) {
        const owners = await deps.owners.claim(
          records.flatMap((r) => {
            const t = (r.value as { tenant_id?: unknown }).tenant_id;
            return typeof t === 'string' ? [{ session_id: r.session, tenant_id: t }] : [];
          }),
        );
        for (const r of records) r.owner = owners.get(r.session);
      }
      if (records.length) replay.push(partition, key, records);
      if (outputsPending() >= max) await commit();
    };
    const { aborted } = await readTopicRanges(kafka, ranges, onBatch, {
      signal: opts.signal,
      onReached: (topic, partition) => {
        reachedEnd.add(`${partition}@${topic}`);
        replay.reached(partition, keyOfTopic.get(topic)!);
      },
      ahead,
    });
    result.aborted = aborted;
    if (!aborted) {
      replay.finish();
      await commit();
    }
  } finally {
    await producer.disconnect().catch((err) => log.warn({ err }, 'rescore producer disconnect failed'));
  }
  result.stepped = replay.counts.stepped;
  result.late = replay.counts.late;
  result.duplicates = replay.counts.duplicates;
  result.tenantMismatch = replay.counts.tenantMismatch;

  if (!result.aborted) {
    const live = await tallyLive(deps, opts);
    result.comparison = compareModels(whatIf, live);
  }
  result.seconds = Math.round(performance.now() - t0) / 1000;
  log.info(
    { ...result, comparison: undefined, sessions: result.comparison.length },
    `rescored with ${result.model}: ${result.produced.scores} scores, ${result.produced.alerts} alert events`,
  );
  return result;
}

/** The live scores and alerts over the same range (ts in [from, to], of `session`), per session. */
async function tallyLive(deps: RescoreDeps, opts: RescoreOptions): Promise<Tally> {
  const live = new Tally('live');
  for (const key of ['scores', 'alerts'] as const) {
    const topic = deps.topics[key];
    const ranges = await rangesOf(deps.kafka, topic, { from: opts.from, session: opts.session });
    await readRanges(
      deps.kafka,
      topic,
      ranges,
      async (_partition, messages) => {
        for (const m of messages) {
          const value = await decodeRecord(deps.serde, m);
          if (value === null || typeof value.ts !== 'number' || value.ts < opts.from || value.ts > opts.to) continue;
          if (opts.session !== undefined && value.session_id !== opts.session) continue;
          if (key === 'scores') live.addScore(value as FatigueScored);
          else live.addAlert(value as AlertEvent);
        }
      },
      { signal: opts.signal },
    );
  }
  return live;
}
