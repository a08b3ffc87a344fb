/**
 * An in-process cache of answers for a short time, for reads that many clients repeat (a dashboard
 * wall polling the same sessions). Freshness contract: a value served was loaded from its sources
 * at most `ttlMs` before; concurrent misses of one key share one load (a burst costs one read of
 * PostgreSQL and Redis, not one per request); a load that fails is not kept (the next read retries);
 * `ttlMs` 0 turns it off (every read loads). At most `max` keys; the oldest go first.
 */
export class ShortCache<V> {
  private readonly entries = new Map<string, { expires: number; value: Promise<V> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly max = 10_000,
  ) {}

  /** The key's value, and whether it came from the cache (`hit`) or `load` (`miss`). */
  async get(key: string, load: () => Promise<V>): Promise<{ value: V; hit: boolean }> {
    if (this.ttlMs <= 0) return { value: await load(), hit: false };
    const now = performance.now();
    const cached = this.entries.get(key);
    if (cached && cached.expires > now) return { value: await cached.value, hit: true };
    if (cached) this.entries.delete(key);
    const value = load();
    const entry = { expires: now + this.ttlMs, value };
    this.entries.set(key, entry);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    try {
      return { value: await value, hit: false };
    } catch (err) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw err;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
