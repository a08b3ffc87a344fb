import type { Message, Transaction } from 'kafkajs';
import { requestsOf } from '../core/produce-requests';
import type { Logger } from '../core/logger';
import type { TopicNames } from '../schemas/catalogue';
import type { LivePartition } from './restore';
import { processorInstruments } from './metrics';

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
 * One attempt, never retried with the same content. kafkajs cannot bump a producer's epoch after a
 * failed transaction (KIP-360), so after one its per-partition sequence numbers may disagree with
 * the broker's: a produce request that timed out may have been written, and a resend of the same
 * content in the next transaction is then either taken for a duplicate of the aborted batch and
 * dropped (outputs lost) or refused. A failure therefore aborts what it can and returns `unusable`:
 * the caller resets the partition (a new producer, InitProducerId: a new epoch that completes or
 * aborts whatever was left open, sequences from 0), restores its sessions from the changelog and
 * re-reads the inputs from the committed offsets, as Kafka Streams revives a task after an
 * abortable error. A failover costs one restore per affected partition, not a duplicate or a loss.
 */
async function transact<S>(
  p: number,
  part: LivePartition<S>,
  out: Map<string, Message[]>,
  ctx: CommitContext,
): Promise<CommitOutcome> {
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
    if (/FENCED|INVALID_PRODUCER_EPOCH/.test(type) || !ctx.owns()) {
      processorInstruments().transactions.add(1, { outcome: 'fenced' });
      return { kind: 'fenced', type };
    }
    processorInstruments().transactions.add(1, { outcome: 'reset' });
    ctx.log.warn({ err, partition: p }, 'transaction failed; the partition is reset from its last commit');
    return { kind: 'unusable', error: err };
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
