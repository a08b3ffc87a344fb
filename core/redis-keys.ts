/**
 * Every Redis key Vigil uses: the one contract between who writes a key and who reads it
 * (docs/design.md §6 read models, §7 API). Every key starts with the prefix (the topic prefix:
 * `vigil` in production), so tests and environments never share keys.
 *
 * Tenant in every key that holds tenant data: the pair (tenant_id, session_id) identifies a session
 * (and (tenant_id, alert_id) an alert), so two tenants' events never share a key whatever ids they
 * carry. In the projection keys `<t>` is the tenant id URI-encoded (no `:` inside it, so a key parses
 * one way); the API cache keys carry it as it is (existing entries keep their names).
 *
 * Written by the Redis projection (projections/redis/, its Lua scripts), read by the API:
 * - `p:tenant:<t>:session:<id>:latest` hash: the newest score of a session (and its end once ended).
 * - `p:tenant:<t>:live` sorted set: session_id → event time of its newest event, while running.
 * - `p:tenant:<t>:alerts:active` hash: alert_id → JSON of each alert not cleared;
 *   `p:tenant:<t>:alert:<id>` hash: one alert's folded state.
 * - `p:tenant:<t>:session:<id>:feed` stream: the live feed the API fans out over SSE;
 *   `...:feed:marks` hash: its per-kind newest ts (the projection's replay guard, not read by the API).
 * - `p:tenant:<t>:feed` stream: every session's feed entries of the tenant in one stream (`/v1/live`).
 * - `p:projection:<name>:checkpoints` hash: the Redis projection's offsets (read by the API's /health).
 * Written and read by the API (api/report-cache.ts), bumped by the jobs worker too:
 * - `p:api:cache:<tenant>:gen` counter: the tenant's cache generation; `p:api:cache:<tenant>:g<gen>:<name>`
 *   a cached answer of that generation (with a TTL).
 * Rate counters (core/rate-limit.ts appends `:<caller>`: an API key id or a client address):
 * - `p:api:addr`, `p:api:rate` (API per address, per key), `p:gateway:addr`, `p:gateway:rate`.
 */
const tenantPart = (tenantId: string): string => encodeURIComponent(tenantId);

export const redisKeys = (prefix: string) => {
  const tenant = (tenantId: string) => `${prefix}:tenant:${tenantPart(tenantId)}`;
  const session = (tenantId: string, sessionId: string) => `${tenant(tenantId)}:session:${sessionId}`;
  const cache = (tenantId: string) => `${prefix}:api:cache:${tenantId}`;
  return {
    latest: (tenantId: string, sessionId: string) => `${session(tenantId, sessionId)}:latest`,
    feed: (tenantId: string, sessionId: string) => `${session(tenantId, sessionId)}:feed`,
    feedMarks: (tenantId: string, sessionId: string) => `${session(tenantId, sessionId)}:feed:marks`,
    tenantFeed: (tenantId: string) => `${tenant(tenantId)}:feed`,
    live: (tenantId: string) => `${tenant(tenantId)}:live`,
    activeAlerts: (tenantId: string) => `${tenant(tenantId)}:alerts:active`,
    alert: (tenantId: string, alertId: string) => `${tenant(tenantId)}:alert:${alertId}`,
    checkpoints: (projection: string) => `${prefix}:projection:${projection}:checkpoints`,
    cacheGeneration: (tenantId: string) => `${cache(tenantId)}:gen`,
    cacheEntry: (tenantId: string, generation: string | null, name: string) =>
      `${cache(tenantId)}:g${generation ?? 0}:${name}`,
    /** Prefixes of rate counters (the limiter appends `:<caller>`). */
    rate: {
      apiAddress: `${prefix}:api:addr`,
      apiKey: `${prefix}:api:rate`,
      gatewayAddress: `${prefix}:gateway:addr`,
      gatewayKey: `${prefix}:gateway:rate`,
    },
  };
};
