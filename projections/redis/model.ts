import type { AlertEvent, FatigueScored, SessionEvent } from '../../schemas/types';
import type { TopicKey } from '../../schemas/catalogue';
import type { ProjectedRecord } from '../model';
import type { RedisScriptName } from './scripts';
import { redisKeys } from '../../core/redis-keys';

/**
 * The Redis read model (docs/design.md §6): what dashboards read without touching PostgreSQL, from
 * `sessions.v1`, `fatigue.scores.v1` and `fatigue.alerts.v1`. Keys (named in core/redis-keys.ts, the
 * contract with the API that reads them), under the prefix `p` (the topic prefix: `vigil` in production):
 *
 * Every key of a session or an alert names its tenant: the pair (tenant_id, session_id) identifies a
 * session (and (tenant_id, alert_id) an alert), so two tenants' events never share a key, whatever
 * ids they carry. `<t>` is the tenant id URI-encoded (no `:` inside it, so a key parses one way).
 *
 * - `p:tenant:<t>:session:<id>:latest` hash: the newest score (ts, score, level, window_start_ts,
 *   components JSON, model_version, event_id, session_id, tenant_id); ended_at and end_reason once ended.
 * - `p:tenant:<t>:live` sorted set: session_id → event time (ms) of its newest session event or
 *   score; sessions leave it when they end. Readers take ZRANGEBYSCORE over their own window.
 * - `p:tenant:<t>:alerts:active` hash: alert_id → JSON of each alert not cleared (status active or
 *   acknowledged); `p:tenant:<t>:alert:<id>` hash: the alert's folded state, kept `alertTtlMs` after
 *   its last event.
 * - `p:tenant:<t>:session:<id>:feed` stream: the live feed (kind session|score|alert, ts, event_id,
 *   data = the event as JSON), capped at ~`feedMaxLen` entries, for SSE fan-out;
 *   `p:tenant:<t>:session:<id>:feed:marks` holds its per-kind newest ts (the replay guard).
 * - `p:tenant:<t>:feed` stream: the same entries of every session of the tenant (the board's `/v1/live`),
 *   capped at ~`feedMaxLen * TENANT_FEED_FACTOR` entries.
 *
 * Session keys expire `sessionTtlMs` after their last write. Pure: records in, operations out, each
 * a guarded Lua script (see scripts.ts); the Redis projection runner applies them.
 */
export interface RedisOp {
  script: RedisScriptName;
  keys: string[];
  args: string[];
}

export interface RedisModelOptions {
  /** Key prefix: the topic prefix, so tests and environments never share keys. */
  prefix: string;
  sessionTtlMs: number;
  alertTtlMs: number;
  /** Live-set members idle this long in event time (behind the newest event written) are dropped. */
  liveStaleMs: number;
  feedMaxLen: number;
}

export const defaultRedisModelOptions: Omit<RedisModelOptions, 'prefix'> = {
  sessionTtlMs: 24 * 3_600_000,
  alertTtlMs: 7 * 24 * 3_600_000,
  liveStaleMs: 3_600_000,
  feedMaxLen: 1_000,
};

/** The tenant feed holds this many times a session feed's cap: a few minutes of a few hundred sessions. */
export const TENANT_FEED_FACTOR = 20;

export const redisTopics: readonly TopicKey[] = ['sessions', 'scores', 'alerts'];

/**
 * The shortest decimal that reads back as the same 32-bit float: Avro `float` fields decode to the
 * float32's exact double (71.30000305175781 for 71.3); Redis stores what the producer meant (71.3),
 * as PostgreSQL `real` prints it.
 */
export function f32(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p < 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === f) return y;
  }
  return Number(x.toPrecision(9));
}

const str = (v: number | string | null | undefined): string => (v === null || v === undefined ? '' : String(v));
const f32OrNull = (x: number | null) => (x === null ? null : f32(x));

export function projectRedis(records: readonly ProjectedRecord[], options: RedisModelOptions): RedisOp[] {
  const o = options;
  const k = redisKeys(o.prefix);
  const ops: RedisOp[] = [];
  const feed = (
    e: { tenant_id: string; session_id: string },
    kind: string,
    ts: number,
    eventId: string,
    data: unknown,
  ) =>
    ops.push({
      script: 'feed',
      keys: [k.feed(e.tenant_id, e.session_id), k.feedMarks(e.tenant_id, e.session_id), k.tenantFeed(e.tenant_id)],
      args: [
        ...[kind, str(ts), eventId, str(o.feedMaxLen), str(o.sessionTtlMs), JSON.stringify(data)],
        str(o.feedMaxLen * TENANT_FEED_FACTOR),
      ],
    });
  const live = (e: { tenant_id: string; session_id: string; ts: number }) =>
    ops.push({
      script: 'live',
      keys: [k.live(e.tenant_id), k.latest(e.tenant_id, e.session_id)],
      args: [e.session_id, str(e.ts), str(o.liveStaleMs)],
    });

  for (const r of records) {
    if (r.topic === 'sessions') {
      const e = r.value as SessionEvent;
      if (e.event.type === 'SessionStarted') live(e);
      else
        ops.push({
          script: 'ended',
          keys: [k.live(e.tenant_id), k.latest(e.tenant_id, e.session_id)],
          args: [e.session_id, str(e.ts), str(o.sessionTtlMs), e.event.reason, e.tenant_id],
        });
      feed(e, 'session', e.ts, e.event_id, e);
    } else if (r.topic === 'scores') {
      const e = r.value as FatigueScored;
      const components = Object.fromEntries(Object.entries(e.components).map(([c, v]) => [c, f32OrNull(v)]));
      const score = { ...e, score: f32(e.score), components };
      ops.push({
        script: 'latest',
        keys: [k.latest(e.tenant_id, e.session_id)],
        args: [
          str(e.ts),
          str(o.sessionTtlMs),
          ...['session_id', e.session_id, 'tenant_id', e.tenant_id, 'score', str(score.score)],
          ...['level', str(e.level), 'window_start_ts', str(e.window_start_ts)],
          ...['components', JSON.stringify(components), 'model_version', e.model_version, 'event_id', e.event_id],
        ],
      });
      live(e);
      feed(e, 'score', e.ts, e.event_id, score);
    } else if (r.topic === 'alerts') {
      const e = r.value as AlertEvent;
      const a = e.event;
      const data = a.type === 'AlertRaised' && a.score !== null ? { ...e, event: { ...a, score: f32(a.score) } } : e;
      ops.push({
        script: 'alert',
        keys: [k.alert(e.tenant_id, a.alert_id), k.activeAlerts(e.tenant_id)],
        args: [
          a.type,
          str(e.ts),
          str(o.alertTtlMs),
          a.alert_id,
          e.session_id,
          e.tenant_id,
          a.type === 'AlertRaised' || a.type === 'AlertEscalated' ? str(a.level) : '',
          a.type === 'AlertRaised' || a.type === 'AlertCleared' ? a.reason : '',
          a.type === 'AlertRaised' ? str(f32OrNull(a.score)) : '',
          a.type === 'AlertEscalated' ? str(a.count) : '',
          a.type === 'AlertAcknowledged' ? a.acknowledged_by : '',
        ],
      });
      feed(e, 'alert', e.ts, e.event_id, data);
    }
  }
  return ops;
}
