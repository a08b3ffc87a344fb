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
 * Contract: when every device publishes non-decreasing `ts` (devices stamp `seq` and `ts` together),
 * the sequence released for each session is the same on every run over the same recorded input,
 * whatever the batch boundaries. Sessions are independent; their relative order is not fixed.
 *
 * Memory is bounded: past `maxHeld` records the oldest are released even if an input might still
 * deliver older ones (the processor then treats those as late).
 */
export interface MergeItem<P> {
  topic: string;
  session: string;
  offset: string;
  ts: number;
  payload: P;
}

export class PartitionMerger<P> {
  private readonly order = new Map<string, number>();
  private readonly caughtUp = new Map<string, boolean>();
  /** session → topic → ts of the last record fetched for the session from that topic. */
  private readonly frontiers = new Map<string, Map<string, number>>();
  private readonly held = new Map<string, MergeItem<P>[]>();
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

  /** Sets whether an input has nothing more to deliver right now (its position is its end). */
  markCaughtUp(topic: string, caughtUp = true): void {
    this.known(topic);
    this.caughtUp.set(topic, caughtUp);
  }

  /** Adds one fetched batch of a topic in offset order; `caughtUp`: the batch reaches the high watermark. */
  push(topic: string, items: MergeItem<P>[], caughtUp: boolean): void {
    this.known(topic);
    for (const item of items) {
      let f = this.frontiers.get(item.session);
      if (!f) this.frontiers.set(item.session, (f = new Map()));
      if (item.ts > (f.get(topic) ?? -Infinity)) f.set(topic, item.ts);
      let h = this.held.get(item.session);
      if (!h) this.held.set(item.session, (h = []));
      h.push(item);
      this.count++;
    }
    this.caughtUp.set(topic, caughtUp);
  }

  get size(): number {
    return this.count;
  }

  /** Removes and returns every held record that no record still to come can precede. */
  release(): MergeItem<P>[] {
    const out: MergeItem<P>[] = [];
    for (const [session, items] of this.held) {
      const f = this.frontiers.get(session)!;
      let bound = Infinity;
      for (const t of this.topicsInOrder) if (!this.caughtUp.get(t)) bound = Math.min(bound, f.get(t) ?? -Infinity);
      items.sort(this.compare);
      let n = 0;
      // Strictly below the bound: the blocking input may still deliver a record at exactly `bound`.
      while (n < items.length && items[n]!.ts < bound) n++;
      if (n > 0) out.push(...items.splice(0, n));
      if (items.length === 0) this.held.delete(session);
    }
    this.count -= out.length;
    if (this.count > this.maxHeld) out.push(...this.evictOldest(this.count - this.maxHeld));
    this.forgetIdleSessions();
    return out;
  }

  private readonly compare = (a: MergeItem<P>, b: MergeItem<P>) =>
    a.ts - b.ts || this.order.get(a.topic)! - this.order.get(b.topic)! || compareOffsets(a.offset, b.offset);

  private evictOldest(n: number): MergeItem<P>[] {
    const all = [...this.held.values()].flat().sort(this.compare).slice(0, n);
    for (const item of all) {
      const h = this.held.get(item.session)!;
      h.splice(h.indexOf(item), 1);
      if (h.length === 0) this.held.delete(item.session);
    }
    this.count -= all.length;
    return all;
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

const compareOffsets = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
