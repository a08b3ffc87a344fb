import type { Consumer, Kafka } from 'kafkajs';
import type { AvroSerde } from '../core/serde';

/**
 * Where a score's time after its window closes goes, for the e2e bench. A consumer of the scores
 * topic (read_committed, like the projections) notes for every score:
 * - `created`: the record's timestamp. The processor sends outputs without one, so kafkajs stamps
 *   the wall time of the send: when the processor's commit of that partition began;
 * - `visible`: when this consumer received it, i.e. the transaction's commit plus one fetch.
 * Stages of a score whose window ends at `ts` (close = ts + allowed lateness):
 * - processor: created − close (the merge's hold, the window's close, the wait for the commit tick);
 * - commit: visible − created (the transaction and a read_committed fetch);
 * - project: seen in the Redis `latest` hash − visible, for the sampled sessions (the Redis
 *   projection's fetch and apply; the bench reads the hash just before each API read, so this also
 *   holds up to one poll interval);
 * - api: seen through the API − seen in Redis (the API's short detail cache, its own reads).
 * `processor` and `commit` are kept for every session: a far larger sample than the poll's.
 * Memory: per sampled session only the scores not yet seen through the API, dropped once older.
 */
export interface StageSamples {
  processor: number[];
  commit: number[];
  project: number[];
  api: number[];
}

/** The pure part: the samples, from sightings in Kafka, Redis and the API. */
export class ScoreStages {
  readonly all: StageSamples = { processor: [], commit: [], project: [], api: [] };
  private readonly pending = new Map<string, Map<number, { visible: number; inRedis?: number }>>();
  private readonly sampled: Set<string>;

  constructor(
    sampled: readonly string[],
    private readonly latenessMs: number,
    /** Scores visible before this wall time are not counted (the step's warm-up). */
    private readonly countFrom: number,
  ) {
    this.sampled = new Set(sampled);
  }

  /** A read_committed consumer received the score of `session` ending at `ts`, stamped `created`. */
  inKafka(session: string, ts: number, created: number, visible: number): void {
    if (visible < this.countFrom) return;
    this.all.processor.push(created - (ts + this.latenessMs));
    this.all.commit.push(visible - created);
    if (!this.sampled.has(session)) return;
    const mine = this.pending.get(session) ?? this.pending.set(session, new Map()).get(session)!;
    mine.set(ts, { visible });
  }

  /** The Redis `latest` hash held `ts` as the session's score at `seenAt` (first sighting counts). */
  seenInRedis(session: string, ts: number, seenAt: number): void {
    const at = this.pending.get(session)?.get(ts);
    if (at && at.inRedis === undefined) {
      at.inRedis = seenAt;
      this.all.project.push(seenAt - at.visible);
    }
  }

  /** The API showed `ts` as the session's latest score at `seenAt`; older scores are forgotten. */
  seenThroughApi(session: string, ts: number, seenAt: number): void {
    const mine = this.pending.get(session);
    const at = mine?.get(ts);
    if (at?.inRedis !== undefined) this.all.api.push(seenAt - at.inRedis);
    for (const older of mine?.keys() ?? []) if (older <= ts) mine!.delete(older);
  }
}

/** Feeds `stages` from the scores topic until the returned stop is called. */
export async function watchScores(o: {
  kafka: Kafka;
  serde: AvroSerde;
  topic: string;
  groupId: string;
  stages: ScoreStages;
}): Promise<() => Promise<void>> {
  const consumer: Consumer = o.kafka.consumer({ groupId: o.groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const visible = Date.now();
      for (const m of batch.messages) {
        const v = (await o.serde.decode<{ session_id: string; ts: number }>(m.value)).value;
        o.stages.inKafka(v.session_id, Number(v.ts), Number(m.timestamp), visible);
      }
    },
  });
  return () => consumer.disconnect();
}
