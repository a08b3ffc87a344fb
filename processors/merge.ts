/**
 * Event-time merge of one partition number across several co-partitioned input topics, per session.
 *
 * Kafka orders records within a topic-partition only; fetch batches of different topics arrive in an
 * order that varies from run to run. Feeding a windowed processor in arrival order would make
 * lateness, and so the output, depend on timing. The merger holds each session's records and
 * releases them in (ts, topic order, offset) order, only below the slowest of that session's inputs
 * that may still deliver: an input's frontier for a session is the ts of its last record for that
 * session, and an input that has caught up with its high watermark holds nobody back.
 *
 * Release is a k-way merge of the session's per-topic queues by (ts, topic order), so each topic's
 * records always come out in offset order (the partition driver's de-duplication relies on it).
 *
 * Contract: when every device publishes non-decreasing `ts` (devices stamp `seq` and `ts` together),
 * the sequence released for each session is the same on every run over the same recorded input,
 * whatever the batch boundaries. Sessions are independent; their relative order is not fixed.
 *
 * "Caught up" goes stale: a topic's flag comes from its last batch, and more may have been written
 * since (a rebalance or a slow partition pauses fetching for seconds). The runner therefore clears
 * the flags after a rebalance and re-checks them against the brokers' end offsets periodically
 * (`markCaughtUp` with the sequence number taken before the check).
 *
 * Barriers: a record marked `barrier` (e.g. SessionEnded, which ends a session's windows) is released
 * only once every other input either has passed its ts for the session, or has been seen caught up by
 * a batch or check newer than the barrier itself, so frames written just before it are not overtaken.
 *
 * Memory is bounded: past `maxHeld` records the oldest are released even if an input might still
 * deliver older ones (the processor then treats those as late).
 *
 * Claims: "caught up" is true of the moment it was seen, not of what is appended after. A flag may
 * carry a claim: the append time (`appendTs`, the partition's clock) up to which it covers the
 * other inputs' records. A held record appended after an input's claim is not released on that
 * input's flag, only on its frontier or a newer claim. Without it, a burst (a backlog sent after a
 * broker failover) let one input release seconds of event time on another input's stale flag while
 * that input's records of the same ticks were still on their way, and those turned late. A flag
 * without a claim covers everything (Infinity: replays, quiet inputs).
 */
/**
 * The merge key of a record: its session and its tenant. A session belongs to one tenant, but a
 * record naming it may come from another (issue 11, dead-lettered once released). Kept in a merge
 * stream of its own, such a record cannot move the owner's frontiers or queues: a forged ts ahead
 * would otherwise let the owner's other inputs overtake its own frames and make them late. The
 * partition driver looks sessions up by the session id alone (the record's key), not by this.
 */
export const mergeKeyOf = (session: string, tenant: unknown): string =>
  typeof tenant === 'string' ? `${session}\u0000${tenant}` : session;

export interface MergeItem<P> {
  topic: string;
  session: string;
  offset: string;
  ts: number;
  payload: P;
  barrier?: boolean;
  /** Set by push: the merger's sequence number when the record arrived. */
  seq?: number;
  /** When the record was appended (ms, the partition's clock); absent: covered by any claim. */
  appendTs?: number;
}

export class PartitionMerger<P> {
  private readonly order = new Map<string, number>();
  private readonly caughtUp = new Map<string, boolean>();
  /** topic → sequence number at which it was last seen caught up. */
  private readonly caughtUpAt = new Map<string, number>();
  /** topic → append time up to which its caught-up flag covers other inputs' records (see Claims). */
  private readonly claims = new Map<string, number>();
  private seq = 0;
  /** session → topic → ts of the last record fetched for the session from that topic. */
  private readonly frontiers = new Map<string, Map<string, number>>();
  /** session → topic → queue of held records in offset order. */
  private readonly held = new Map<string, Map<string, MergeItem<P>[]>>();
  private count = 0;

  constructor(
    private readonly topicsInOrder: readonly string[],
    private readonly maxHeld = 50_000,
    private readonly maxSessions = 100_000,
  ) {
    topicsInOrder.forEach((t, i) => {
      this.order.set(t, i);
      this.caughtUp.set(t, false);
    });
  }

  /** A sequence number to take before an asynchronous caught-up check (see markCaughtUp). */
  nextSeq(): number {
    return ++this.seq;
  }

  /**
   * Sets whether an input has nothing more to deliver right now (its position is its end). `asOf`
   * is the sequence number taken when the check started (default: now).
   */
  markCaughtUp(topic: string, caughtUp = true, asOf = this.nextSeq(), claim = Infinity): void {
    this.known(topic);
    this.setCaughtUp(topic, caughtUp, claim);
    if (caughtUp) this.caughtUpAt.set(topic, Math.max(this.caughtUpAt.get(topic) ?? 0, asOf));
  }

  /** A flag that stays true keeps its newest claim; one that turns true starts from `claim`. */
  private setCaughtUp(topic: string, caughtUp: boolean, claim: number): void {
    if (caughtUp) {
      const kept = this.caughtUp.get(topic) ? (this.claims.get(topic) ?? Infinity) : -Infinity;
      this.claims.set(topic, Math.max(kept, claim));
    }
    this.caughtUp.set(topic, caughtUp);
  }

  /** Whether topic's caught-up claim covers the item (appended at or before it; see Claims). */
  private claimCovers(topic: string, item: MergeItem<P>): boolean {
    return (item.appendTs ?? -Infinity) <= (this.claims.get(topic) ?? Infinity);
  }

  /** Marks every input as possibly behind (e.g. after a rebalance paused fetching). */
  forgetCaughtUp(): void {
    for (const t of this.topicsInOrder) this.caughtUp.set(t, false);
  }

  /**
   * Adds one fetched batch of a topic in offset order; `caughtUp`: the batch reaches the high
   * watermark, with `claim` (see Claims; default: covers everything).
   */
  push(topic: string, items: MergeItem<P>[], caughtUp: boolean, claim = Infinity): void {
    this.known(topic);
    const seq = this.nextSeq();
    for (const item of items) {
      item.seq = seq;
      let f = this.frontiers.get(item.session);
      if (!f) this.frontiers.set(item.session, (f = new Map()));
      if (item.ts > (f.get(topic) ?? -Infinity)) f.set(topic, item.ts);
      let h = this.held.get(item.session);
      if (!h) this.held.set(item.session, (h = new Map()));
      let q = h.get(topic);
      if (!q) h.set(topic, (q = []));
      q.push(item);
      this.count++;
    }
    this.setCaughtUp(topic, caughtUp, claim);
    if (caughtUp) this.caughtUpAt.set(topic, seq);
  }

  get size(): number {
    return this.count;
  }

  /** Per topic, the lowest offset still held (input offsets must not be committed past it). */
  lowestHeldOffsets(): Map<string, bigint> {
    const lowest = new Map<string, bigint>();
    for (const queues of this.held.values()) {
      for (const [topic, q] of queues) {
        if (q.length === 0) continue;
        const o = BigInt(q[0]!.offset);
        const cur = lowest.get(topic);
        if (cur === undefined || o < cur) lowest.set(topic, o);
      }
    }
    return lowest;
  }

  /** Removes and returns every held record that no record still to come can precede. */
  release(): MergeItem<P>[] {
    const out: MergeItem<P>[] = [];
    for (const [session, queues] of this.held) {
      const f = this.frontiers.get(session)!;
      // `bound`: the lowest frontier of the inputs not caught up. A head appended after the oldest
      // claim (`minClaim`) is also bounded by the frontiers of the inputs whose claim it passed.
      let bound = Infinity;
      let minClaim = Infinity;
      for (const t of this.topicsInOrder) {
        if (!this.caughtUp.get(t)) bound = Math.min(bound, f.get(t) ?? -Infinity);
        else minClaim = Math.min(minClaim, this.claims.get(t) ?? Infinity);
      }
      const boundOf = (head: MergeItem<P>): number => {
        if ((head.appendTs ?? -Infinity) <= minClaim) return bound;
        let b = bound;
        for (const t of this.topicsInOrder) {
          if (this.caughtUp.get(t) && !this.claimCovers(t, head)) b = Math.min(b, f.get(t) ?? -Infinity);
        }
        return b;
      };
      // Strictly below the bound: the blocking input may still deliver a record at exactly `bound`.
      this.drain(queues, (head) => head.ts < boundOf(head) && (!head.barrier || this.barrierClear(head, f)), out);
      if (this.isEmpty(queues)) this.held.delete(session);
    }
    this.count -= out.length;
    if (this.count > this.maxHeld) out.push(...this.evictOldest(this.count - this.maxHeld));
    this.forgetIdleSessions();
    return out;
  }

  /** k-way merge of one session's queues by (ts, topic order) while `ok(head)` holds. */
  private drain(
    queues: Map<string, MergeItem<P>[]>,
    ok: (head: MergeItem<P>) => boolean,
    out: MergeItem<P>[],
    limit = Infinity,
  ): void {
    while (out.length < limit) {
      let best: MergeItem<P>[] | undefined;
      for (const q of queues.values()) {
        const head = q[0];
        if (head && (!best || this.before(head, best[0]!))) best = q;
      }
      if (!best || !ok(best[0]!)) return;
      out.push(best.shift()!);
    }
  }

  /** Every other input has passed the barrier's ts for its session, or was caught up after it arrived. */
  private barrierClear(item: MergeItem<P>, frontier: Map<string, number>): boolean {
    for (const t of this.topicsInOrder) {
      if (t === item.topic) continue;
      if ((frontier.get(t) ?? -Infinity) >= item.ts) continue;
      if ((this.caughtUpAt.get(t) ?? 0) > (item.seq ?? 0) && this.caughtUp.get(t) && this.claimCovers(t, item))
        continue;
      return false;
    }
    return true;
  }

  private before(a: MergeItem<P>, b: MergeItem<P>): boolean {
    return a.ts < b.ts || (a.ts === b.ts && this.order.get(a.topic)! < this.order.get(b.topic)!);
  }

  private isEmpty(queues: Map<string, MergeItem<P>[]>): boolean {
    for (const q of queues.values()) if (q.length) return false;
    return true;
  }

  /** Past the bound: the globally oldest heads go first, each session's queues still merged in order. */
  private evictOldest(n: number): MergeItem<P>[] {
    const out: MergeItem<P>[] = [];
    while (out.length < n) {
      let oldest: [string, Map<string, MergeItem<P>[]>] | undefined;
      let oldestTs = Infinity;
      for (const entry of this.held) {
        for (const q of entry[1].values()) if (q[0] && q[0].ts < oldestTs) [oldestTs, oldest] = [q[0].ts, entry];
      }
      if (!oldest) break;
      this.drain(oldest[1], () => true, out, out.length + 1);
      if (this.isEmpty(oldest[1])) this.held.delete(oldest[0]);
    }
    this.count -= out.length;
    return out;
  }

  /** Frontiers of sessions with nothing held are dropped beyond `maxSessions` (oldest first). */
  private forgetIdleSessions(): void {
    if (this.frontiers.size <= this.maxSessions) return;
    for (const s of this.frontiers.keys()) {
      if (this.frontiers.size <= this.maxSessions) break;
      if (!this.held.has(s)) this.frontiers.delete(s);
    }
  }

  private known(topic: string): void {
    if (!this.order.has(topic)) throw new Error(`merger: unknown input topic ${topic}`);
  }
}
