import type { RateDecision, RateLimiter, RedisRateLimiter } from './rate-limit';

/**
 * A per-caller limit shared in Redis (`RedisRateLimiter`'s fixed window) that asks Redis only when it
 * matters: far from the limit, takes are counted in process and added to the shared counter in the
 * background every `syncMs`; close to it, every take goes to Redis as with `RedisRateLimiter` alone.
 *
 * Contract (what each instance of a service decides, for one caller and one window):
 * - A take is allowed in process (and counted) only while this instance holds at most `reserve`
 *   points (`reserveShare` of the limit, at least 1) of the caller not yet in Redis, and would leave
 *   at least `reserve` points by its view (the shared count Redis last answered + what it took
 *   since). Within `syncMs` those points are added to Redis.
 * - Every other take (the first of a window, one near the limit, one over the local allowance) is
 *   decided by Redis with what this instance took since carried along: exact, a refused take counted
 *   as in `RedisRateLimiter`.
 * - So one instance keeps the limit exactly; N instances can let through at most about
 *   (N − 1) × `reserve` more than the limit in a window (each holds at most `reserve` points Redis
 *   has not seen): with two instances and the default 10%, at most 10% over.
 * - Redis down: as `RedisRateLimiter`, fail open (allowed, no remaining); what was counted here is
 *   kept and added once Redis answers again, unless its window ended meanwhile.
 *
 * The RateLimit headers show this instance's view (remaining = limit − shared count − taken here).
 */
export interface BatchedRateLimiterOptions {
  /** How often points counted in process are added to the shared counter. Default 100 ms. */
  syncMs?: number;
  /** Share of the limit decided by Redis take by take. Default 0.1. */
  reserveShare?: number;
}

interface CallerState {
  /** The shared count as Redis last answered it. */
  known: number;
  /** Points taken here, not yet sent to Redis. */
  pending: number;
  /** Points taken here, on their way to Redis. */
  inFlight: number;
  /** Wall clock (ms) at which the shared window ends, as Redis last answered. */
  windowEnd: number;
}

export class BatchedRateLimiter implements RateLimiter {
  private readonly states = new Map<string, CallerState>();
  private readonly timer: NodeJS.Timeout;
  /** Points left below which every take asks Redis. */
  readonly reserve: number;

  constructor(
    private readonly shared: RedisRateLimiter,
    opts: BatchedRateLimiterOptions = {},
  ) {
    this.reserve = Math.max(1, Math.ceil(shared.points * (opts.reserveShare ?? 0.1)));
    this.timer = setInterval(() => this.sync(), opts.syncMs ?? 100);
    this.timer.unref();
  }

  /** Callers with a count in process (bounded by the callers active within one window). */
  get callers(): number {
    return this.states.size;
  }

  async take(callerId: string, points: number): Promise<RateDecision> {
    const limit = this.shared.points;
    const now = Date.now();
    const st = this.states.get(callerId);
    if (st && now < st.windowEnd) {
      const used = st.known + st.inFlight + st.pending + points;
      if (st.pending + st.inFlight + points <= this.reserve && limit - used >= this.reserve) {
        st.pending += points;
        return {
          allowed: true,
          limit,
          windowS: this.shared.window,
          remaining: limit - used,
          resetMs: st.windowEnd - now,
        };
      }
    }
    return this.takeShared(callerId, points, now);
  }

  /** Stops the background sync (what was counted and not sent yet stays uncounted in Redis). */
  stop(): void {
    clearInterval(this.timer);
  }

  private async takeShared(callerId: string, points: number, now: number): Promise<RateDecision> {
    const limit = this.shared.points;
    const windowS = this.shared.window;
    let st = this.states.get(callerId);
    if (st && now >= st.windowEnd) {
      this.states.delete(callerId);
      st = undefined;
    }
    const carried = st?.pending ?? 0;
    if (st) st.pending = 0;
    const count = await this.shared.count(callerId, carried + points);
    if (!count) {
      if (st) st.pending += carried + points; // sent with a later sync, if its window is still open
      return { allowed: true, limit, windowS };
    }
    const fresh = this.states.get(callerId) ?? { known: 0, pending: 0, inFlight: 0, windowEnd: 0 };
    fresh.known = count.consumed;
    fresh.windowEnd = Date.now() + count.resetMs;
    this.states.set(callerId, fresh);
    const remaining = Math.max(0, limit - count.consumed - fresh.pending - fresh.inFlight);
    return { allowed: count.consumed <= limit, limit, windowS, remaining, resetMs: count.resetMs };
  }

  /** Sends each caller's points counted in process (one Redis call per caller with any); drops ended windows. */
  private sync(): void {
    const now = Date.now();
    for (const [callerId, st] of this.states) {
      if (now >= st.windowEnd) {
        if (st.inFlight === 0) this.states.delete(callerId);
        continue;
      }
      if (st.pending === 0 || st.inFlight > 0) continue;
      const n = st.pending;
      st.pending = 0;
      st.inFlight = n;
      void this.shared.count(callerId, n).then((count) => {
        st.inFlight -= n;
        if (!count) {
          st.pending += n;
          return;
        }
        st.known = count.consumed;
        st.windowEnd = Date.now() + count.resetMs;
      });
    }
  }
}
