/**
 * The Lua scripts the Redis read model's operations run (one EVALSHA each; ioredis `defineCommand`
 * sends EVAL the first time on a connection, then EVALSHA). Each is idempotent and guarded by event
 * time, so applying a batch twice, or an older event after a newer one, never moves state backwards.
 * Numbers travel as decimal strings; '' stands for "none".
 */
interface RedisScript {
  numberOfKeys: number;
  lua: string;
}

export const redisScripts = {
  /**
   * The latest score of a session. KEYS: latest hash. ARGV: ts, ttl ms, then field/value pairs.
   * Writes only when ts is newer than the stored `ts`.
   */
  latest: {
    numberOfKeys: 1,
    lua: `
local cur = redis.call('HGET', KEYS[1], 'ts')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'ts', ARGV[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`,
  },
  /**
   * A session was seen. KEYS: the tenant's live zset, the session's latest hash. ARGV: session_id, ts,
   * stale ms. Raises the member's score to ts (ZADD GT: never lowers it), unless the session has ended;
   * drops members older than ts - stale (garbage collection: readers pick their own window).
   */
  live: {
    numberOfKeys: 2,
    lua: `
if redis.call('HEXISTS', KEYS[2], 'ended_at') == 1 then return 0 end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', tonumber(ARGV[2]) - tonumber(ARGV[3])))
return 1`,
  },
  /**
   * A session ended. KEYS: the tenant's live zset, the session's latest hash. ARGV: session_id, ts, ttl
   * ms, reason, tenant_id. Marks the session ended (so later `live` calls leave it out) and takes it off the set.
   */
  ended: {
    numberOfKeys: 2,
    lua: `
redis.call('HSET', KEYS[2], 'session_id', ARGV[1], 'tenant_id', ARGV[5], 'ended_at', ARGV[2], 'end_reason', ARGV[4])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`,
  },
  /**
   * One alert event folded into the alert's state, as the `alerts` table does: level and escalations
   * only rise, raised/acknowledged/cleared are set once, cleared is final. KEYS: the alert's hash, the
   * tenant's active-alerts hash (alert_id → JSON of the state while not cleared). ARGV: type, ts, ttl
   * ms, alert_id, session_id, tenant_id, level, reason, score, count, acknowledged_by.
   */
  alert: {
    numberOfKeys: 2,
    lua: `
if redis.call('HEXISTS', KEYS[1], 'cleared_at') == 1 then return 0 end
local kind, ts = ARGV[1], ARGV[2]
local s = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
s.alert_id, s.session_id, s.tenant_id = ARGV[4], ARGV[5], ARGV[6]
if ARGV[7] ~= '' and (s.level == nil or tonumber(ARGV[7]) > tonumber(s.level)) then s.level = ARGV[7] end
if kind == 'AlertRaised' and s.raised_at == nil then
  s.raised_at, s.reason = ts, ARGV[8]
  if ARGV[9] ~= '' then s.score = ARGV[9] end
end
if kind == 'AlertEscalated' and (s.escalations == nil or tonumber(ARGV[10]) > tonumber(s.escalations)) then
  s.escalations = ARGV[10]
end
if kind == 'AlertAcknowledged' and s.acknowledged_at == nil then
  s.acknowledged_at, s.acknowledged_by = ts, ARGV[11]
end
if kind == 'AlertCleared' then s.cleared_at, s.clear_reason = ts, ARGV[8] end
if s.last_event_ts == nil or tonumber(ts) > tonumber(s.last_event_ts) then s.last_event_ts = ts end
s.status = (s.cleared_at and 'cleared') or (s.acknowledged_at and 'acknowledged') or 'active'
local flat = {}
for k, v in pairs(s) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if s.status == 'cleared' then
  redis.call('HDEL', KEYS[2], s.alert_id)
else
  local function num(v) if v == nil then return cjson.null end return tonumber(v) end
  local function str(v) if v == nil then return cjson.null end return v end
  redis.call('HSET', KEYS[2], s.alert_id, cjson.encode({
    alert_id = s.alert_id, session_id = s.session_id, tenant_id = s.tenant_id, level = num(s.level),
    reason = str(s.reason), score = num(s.score), status = s.status, raised_at = num(s.raised_at),
    escalations = tonumber(s.escalations or '0'), acknowledged_at = num(s.acknowledged_at),
    acknowledged_by = str(s.acknowledged_by), last_event_ts = num(s.last_event_ts) }))
end
return 1`,
  },
  /**
   * One entry of a session's live feed, also appended to the tenant's feed. KEYS: the feed stream, its
   * marks hash, the tenant's feed stream. ARGV: kind, ts, event_id, max length, ttl ms, data (JSON),
   * the tenant feed's max length. Per kind, appends only events at or after the newest ts
   * appended so far, and each event_id at that ts once: a replay adds nothing, and a late event is not
   * news (it is in PostgreSQL). Entries get auto ids (arrival order); the stream is capped (MAXLEN ~).
   */
  feed: {
    numberOfKeys: 3,
    lua: `
local kind, ts, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local mark = redis.call('HGET', KEYS[2], kind .. ':ts')
local ids = ''
if mark then
  mark = tonumber(mark)
  if ts < mark then return 0 end
  if ts == mark then
    ids = redis.call('HGET', KEYS[2], kind .. ':ids') or ''
    if string.find(',' .. ids .. ',', ',' .. id .. ',', 1, true) then return 0 end
    ids = ids .. ','
  end
end
redis.call('HSET', KEYS[2], kind .. ':ts', ARGV[2], kind .. ':ids', ids .. id)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'kind', kind, 'ts', ARGV[2], 'event_id', id, 'data', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'kind', kind, 'ts', ARGV[2], 'event_id', id, 'data', ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return 1`,
  },
} satisfies Record<string, RedisScript>;

export type RedisScriptName = keyof typeof redisScripts;
