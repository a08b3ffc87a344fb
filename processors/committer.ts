import type { Message, Transaction } from 'kafkajs';
import type { Logger } from '../core/logger';
import type { TopicNames } from '../schemas/catalogue';
import type { LivePartition } from './restore';
import { processorInstruments } from './metrics';

/**
 * Bytes (keys + values) per produce request of a commit: a request carries one record batch per
 * partition, and the broker refuses a batch over `max.message.bytes` (1 MiB by default) for good.
 * A backlog's commit (up to COMMIT_MAX_MESSAGES outputs, late copies of input records, session
 * snapshots) can be larger, so it goes out as several requests inside the same transaction.
 */
const REQUEST_MAX_BYTES = 512 * 1024;

/** Transient commit failures retried with the same content before the partition is reset. */
const COMMIT_ATTEMPTS = 8;

/** The commit's messages as produce requests of at most REQUEST_MAX_BYTES (a larger message alone). */
export function requestsOf(
  out: Map<string, Message[]>,
  maxBytes = REQUEST_MAX_BYTES,
): { topic: string; messages: Message[] }[][] {
  const requests: { topic: string; messages: Message[] }[][] = [];
  let current = new Map<string, Message[]>();
  let bytes = 0;
  const sizeOf = (m: Message) =>
    (m.key ? Buffer.byteLength(m.key) : 0) + (m.value ? Buffer.byteLength(m.value) : 0) + 64;
  for (const [topic, messages] of out) {
    for (const m of messages) {
      const size = sizeOf(m);
      if (bytes > 0 && bytes + size > maxBytes) {
        requests.push([...current].map(([t, ms]) => ({ topic: t, messages: ms })));
        current = new Map();
        bytes = 0;
      }
      (current.get(topic) ?? current.set(topic, []).get(topic)!).push(m);
      bytes += size;
    }
  }
  if (bytes > 0) requests.push([...current].map(([t, ms]) => ({ topic: t, messages: ms })));
  return requests;
}

interface CommitContext {
  groupId: string;
  topics: TopicNames;
  log: Logger;
  /** Whether this member still owns the partition (a revoked one is not committed to). */
  owns: () => boolean;
}

/**
 * How a commit ended: `fenced` (another member owns the partition now: drop its state, the new owner
 * restores from the changelog) or `unusable` (the producer cannot begin a transaction, or kept
 * failing: reset the partition from the changelog and the committed offsets).
 */
type CommitOutcome =
  | { kind: 'committed' }
  /** Nothing to commit, or the partition was retired meanwhile (its state is being replaced). */
  | { kind: 'skipped' }
  | { kind: 'fenced'; type: string }
  | { kind: 'unusable'; error: unknown };

/**
 * Commits what is pending on the partition in ONE transaction (docs/design.md §4): the outputs, late
 * copies and dead letters, the touched sessions' snapshots (compacted changelog; a tombstone for a
 * forgotten session), and the input offsets, which never pass a record still held by the merge.
 */
export async function commitPending<S>(p: number, part: LivePartition<S>, ctx: CommitContext): Promise<CommitOutcome> {
  if (part.retired || (part.pendingCount === 0 && part.dirty.size === 0)) return { kind: 'skipped' };
  const out = part.pending;
  const changelog: Message[] = [...part.dirty].map((session) => ({
    key: session,
    value: part.driver.snapshot(session),
  }));
  if (changelog.length) out.set(ctx.topics.changelog, [...(out.get(ctx.topics.changelog) ?? []), ...changelog]);
  part.pending = new Map();
  part.pendingCount = 0;
  part.dirty = new Set();
  const outcome = await transact(p, part, out, ctx);
  if (outcome.kind === 'committed') {
    const bytes = changelog.reduce((n, m) => n + (m.value ? Buffer.byteLength(m.value) : 0), 0);
    if (bytes > 0) processorInstruments().changelogBytes.add(bytes);
  }
  return outcome;
}

/**
 * The in-memory state already reflects the content, so a transient failure is retried (with backoff)
 * with the same content until it commits. A producer that cannot even begin a transaction (e.g. left
 * in COMMITTING when the broker went away mid-commit: whether that commit landed is unknown), or one
 * that keeps failing, is not retried with the same content: the caller resets the partition.
 */
async function transact<S>(
  p: number,
  part: LivePartition<S>,
  out: Map<string, Message[]>,
  ctx: CommitContext,
): Promise<CommitOutcome> {
  for (let attempt = 1; ; attempt++) {
    let tx: Transaction | undefined;
    try {
      tx = await part.producer.transaction();
      for (const topicMessages of requestsOf(out)) await tx.sendBatch({ acks: -1, topicMessages });
      await tx.sendOffsets({ consumerGroupId: ctx.groupId, topics: commitOffsets(p, part, ctx.topics) });
      await tx.commit();
      processorInstruments().transactions.add(1, { outcome: 'committed' });
      return { kind: 'committed' };
    } catch (err) {
      await tx?.abort().catch(() => {});
      if (part.retired) return { kind: 'skipped' };
      const type = (err as { type?: string }).type ?? '';
      const count = (outcome: string) => processorInstruments().transactions.add(1, { outcome });
      if (/FENCED|INVALID_PRODUCER_EPOCH/.test(type) || !ctx.owns()) {
        count('fenced');
        return { kind: 'fenced', type };
      }
      if (!tx || attempt >= COMMIT_ATTEMPTS) {
        count('reset');
        return { kind: 'unusable', error: err };
      }
      count('aborted');
      const delay = Math.min(5_000, 100 * 2 ** attempt);
      ctx.log.warn({ err, partition: p, attempt, delay }, 'transaction failed, retrying');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Per input topic: the lowest offset still held by the merge, else the next offset to fetch. */
function commitOffsets<S>(p: number, part: LivePartition<S>, topics: TopicNames) {
  const lowest = new Map([...part.driver.lowestHeldOffsets()].map(([key, offset]) => [topics[key], offset]));
  return [...part.fetched].map(([topic, next]) => ({
    topic,
    partitions: [{ partition: p, offset: String(lowest.get(topic) ?? next) }],
  }));
}
