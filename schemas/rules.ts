import type { TopicKey } from './catalogue';
import { VigilError } from './errors';

/**
 * The physical ranges and formats of every event field: the one rule table (issue 11, DESIGN
 * section 3 "Device trust"). The Avro schema says a field is a float; this says it is a fraction in
 * [0, 1]. Used by the ingest gateway (400 with index, field and rule), the producer library (throws
 * before sending), `vigil publish` (line and reason), the processor and the projections (dead letter
 * with reason `rule_violation`). Each rule's `text` also stands in the field's `.avsc` doc
 * ("Rule: ..."), checked by rules.unit.spec.ts, so the contract and the code cannot drift apart.
 *
 * Rules apply to decoded values (avsc's unwrapped unions: `event` is an object with a `type`).
 * Paths: `a.b`, `channels[].quality` for every element of an array. A field absent or null is not
 * checked here (the Avro schema decides whether it may be); strings anywhere are bounded and free of
 * control characters even where no field rule names them.
 */

interface Violation {
  /** JSON path of the offending field as a device developer writes it: `channels.2.quality`. */
  field: string;
  /** Stable rule name, e.g. `fraction`, `uuid`, `timestamp`. */
  rule: string;
  message: string;
}

interface Rule {
  name: string;
  /** The rule in words, as it appears in the `.avsc` doc after "Rule: ". */
  text: string;
  ok: (v: unknown) => boolean;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** C0 and C1 control characters (U+0000 included: PostgreSQL refuses it in text) and lone surrogates. */
const CONTROL_RE =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Cheap pre-check: most strings hold neither a control character nor a surrogate at all. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const SUSPECT_RE = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/;
const hasControl = (v: string): boolean => SUSPECT_RE.test(v) && CONTROL_RE.test(v);

/** 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z: any device time outside is a broken clock or a unit error. */
const TS_MIN = Date.UTC(2000, 0, 1);
export const TS_MAX = Date.UTC(2100, 0, 1);

/** Longest free-text string anywhere in an event (ids have tighter rules). */
const TEXT_MAX = 256;

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

const range = (name: string, min: number, max: number, unit = ''): Rule => ({
  name,
  text: `a finite number in [${min}, ${max}]${unit}`,
  ok: (v) => num(v) && v >= min && v <= max,
});

const intRange = (name: string, min: number, max: number, unit = ''): Rule => ({
  name,
  text: `an integer in [${min}, ${max}]${unit}`,
  ok: (v) => num(v) && Number.isInteger(v) && v >= min && v <= max,
});

const identifier = (name: string, min: number, max: number): Rule => {
  const re = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:-]{${min - 1},${max - 1}}$`);
  return {
    name,
    text: `${min}-${max} characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit`,
    ok: (v) => typeof v === 'string' && re.test(v),
  };
};

const text = (max: number, min = 1): Rule => ({
  name: 'text',
  text: `${min}-${max} characters, no control characters`,
  ok: (v) => typeof v === 'string' && v.length >= min && v.length <= max && !hasControl(v),
});

export const R = {
  uuid: { name: 'uuid', text: 'a UUID (8-4-4-4-12 hex digits)', ok: (v) => typeof v === 'string' && UUID_RE.test(v) },
  // As core/api-keys.ts accepts tenant ids (1-128): every tenant that can get a key can send.
  tenant: identifier('tenant_id', 1, 128),
  session: identifier('session_id', 8, 128),
  id: text(128),
  freeText: text(TEXT_MAX, 0),
  timestamp: {
    name: 'timestamp',
    text: 'an integer of ms since the Unix epoch from 2000-01-01 to 2100-01-01',
    ok: (v) => num(v) && Number.isInteger(v) && v >= TS_MIN && v <= TS_MAX,
  },
  seq: intRange('seq', 0, Number.MAX_SAFE_INTEGER),
  fraction: range('fraction', 0, 1),
  angle: range('angle', -180, 180, ' degrees'),
  speed: range('speed', 0, 500, ' km/h'),
  laneOffset: range('lane_offset', -10, 10, ' m'),
  steering: range('steering', -1080, 1080, ' degrees'),
  bandPower: range('band_power', 0, 1e6, ' uV^2'),
  reactionMs: intRange('reaction_ms', 0, 60_000, ' ms'),
  timeoutMs: intRange('timeout_ms', 1, 60_000, ' ms'),
  score: range('score', 0, 100),
  level: intRange('level', 0, 2),
  count: intRange('count', 0, 1_000_000),
  sdlp: range('sdlp', 0, 10, ' m'),
  nonNegative: range('non_negative', 0, 1e9),
  finite: range('finite', -1e9, 1e9),
  channels: {
    name: 'channels',
    text: 'an array of 1-64 channels',
    ok: (v) => Array.isArray(v) && v.length >= 1 && v.length <= 64,
  },
  devices: {
    name: 'devices',
    text: 'an array of at most 16 devices',
    ok: (v) => Array.isArray(v) && v.length <= 16,
  },
} satisfies Record<string, Rule>;

const envelope = { event_id: R.uuid, tenant_id: R.tenant, session_id: R.session, ts: R.timestamp };
const device = { device_id: R.id, seq: R.seq };

const topicRules = {
  sessions: {
    ...envelope,
    'event.driver_id': R.id,
    'event.vehicle_id': R.id,
    'event.devices': R.devices,
    'event.devices[].device_id': R.id,
  },
  eeg: {
    ...envelope,
    ...device,
    channels: R.channels,
    'channels[].channel': R.id,
    'channels[].delta_uv2': R.bandPower,
    'channels[].theta_uv2': R.bandPower,
    'channels[].alpha_uv2': R.bandPower,
    'channels[].beta_uv2': R.bandPower,
    'channels[].gamma_uv2': R.bandPower,
    'channels[].quality': R.fraction,
  },
  face: {
    ...envelope,
    ...device,
    eye_closure: R.fraction,
    mouth_open: R.fraction,
    head_pitch_deg: R.angle,
    head_yaw_deg: R.angle,
    head_roll_deg: R.angle,
  },
  vehicle: {
    ...envelope,
    ...device,
    speed_kmh: R.speed,
    lane_offset_m: R.laneOffset,
    steering_deg: R.steering,
  },
  game: {
    ...envelope,
    ...device,
    'event.lane_offset_m': R.laneOffset,
    'event.object': R.id,
    'event.speed_kmh': R.speed,
    'event.stimulus_id': R.id,
    'event.reaction_ms': R.reactionMs,
    'event.timeout_ms': R.timeoutMs,
  },
  scores: {
    ...envelope,
    window_start_ts: R.timestamp,
    window_end_ts: R.timestamp,
    score: R.score,
    level: R.level,
    'components.ocular': R.fraction,
    'components.driving': R.fraction,
    'components.eeg': R.fraction,
    'components.reaction': R.fraction,
    'components.yawn': R.fraction,
    'features.perclos': R.fraction,
    'features.long_blink_share': R.fraction,
    'features.sdlp_m': R.sdlp,
    'features.lane_departures': R.count,
    'features.eeg_ratio': R.nonNegative,
    'features.eeg_ratio_z': R.finite,
    'features.lapses': R.count,
    'features.yawns': R.count,
    model_version: R.id,
  },
  alerts: {
    ...envelope,
    'event.alert_id': R.id,
    'event.level': R.level,
    'event.score': R.score,
    'event.count': R.count,
    'event.acknowledged_by': R.freeText,
  },
  commands: {
    ...envelope,
    'event.alert_id': R.id,
    'event.acknowledged_by': R.freeText,
  },
};

/** Per topic: field path → rule. Paths under `event.` apply to whichever union branch has the field. */
export const ruleTable: Record<TopicKey, Record<string, Rule>> = {
  ...topicRules,
  scoresWhatIf: topicRules.scores,
  alertsWhatIf: topicRules.alerts,
};

/** A rule-table path split once into its segments (`channels[].quality` → channels (array), quality). */
interface CompiledPath {
  segs: { name: string; arr: boolean }[];
  rule: Rule;
}

const compiled = new Map<TopicKey, CompiledPath[]>();

function compiledOf(key: TopicKey): CompiledPath[] {
  let c = compiled.get(key);
  if (!c) {
    c = Object.entries(ruleTable[key]).map(([path, rule]) => ({
      rule,
      segs: path.split('.').map((seg) => ({ name: seg.replace(/\[\]$/, ''), arr: seg.endsWith('[]') })),
    }));
    compiled.set(key, c);
  }
  return c;
}

/**
 * Checks every value at a compiled path. The hot path allocates nothing for a good event: the JSON
 * path (`channels.2.quality`) is built from `trail` only when a value breaks the rule.
 */
function checkPath(v: unknown, c: CompiledPath, i: number, trail: (string | number)[], out: Violation[]): void {
  if (i === c.segs.length) {
    if (v === null || v === undefined || c.rule.ok(v)) return;
    out.push({ field: trail.join('.'), rule: c.rule.name, message: `must be ${c.rule.text}, got ${preview(v)}` });
    return;
  }
  if (typeof v !== 'object' || v === null) return;
  const seg = c.segs[i]!;
  if (!Object.hasOwn(v, seg.name)) return;
  const child = (v as Record<string, unknown>)[seg.name];
  trail.push(seg.name);
  if (!seg.arr) checkPath(child, c, i + 1, trail, out);
  else if (Array.isArray(child)) {
    for (let k = 0; k < child.length; k++) {
      trail.push(k);
      checkPath(child[k], c, i + 1, trail, out);
      trail.pop();
    }
  }
  trail.pop();
}

/** Strings anywhere that break the free-text rule (control characters, over TEXT_MAX), non-finite numbers. */
function badStrings(v: unknown, trail: (string | number)[], out: Violation[]): void {
  if (out.length >= 20 || trail.length > 8) return;
  const field = () => (trail.length ? trail.join('.') : '(value)');
  if (typeof v === 'string') {
    if (v.length > TEXT_MAX || hasControl(v))
      out.push({ field: field(), rule: 'text', message: `must be ${R.freeText.text}` });
  } else if (typeof v === 'number') {
    if (!Number.isFinite(v)) out.push({ field: field(), rule: 'finite', message: 'must be a finite number' });
  } else if (Array.isArray(v)) {
    for (let k = 0; k < v.length; k++) {
      trail.push(k);
      badStrings(v[k], trail, out);
      trail.pop();
    }
  } else if (typeof v === 'object' && v !== null) {
    for (const k in v) {
      if (!Object.hasOwn(v, k)) continue;
      trail.push(k);
      badStrings((v as Record<string, unknown>)[k], trail, out);
      trail.pop();
    }
  }
}

const preview = (v: unknown): string => {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/**
 * What breaks the rule table in a decoded event of `key` (empty when it keeps every rule). Cheap
 * enough for the hot path: a few property reads per field, no allocation when the event is good.
 */
export function violationsOf(key: TopicKey, value: unknown): Violation[] {
  const out: Violation[] = [];
  if (typeof value !== 'object' || value === null) {
    return [{ field: '(value)', rule: 'object', message: 'must be an object' }];
  }
  const trail: (string | number)[] = [];
  for (const c of compiledOf(key)) checkPath(value, c, 0, trail, out);
  if (out.length === 0) badStrings(value, trail, out);
  return out;
}

/** One line for a dead letter's reason or a CLI message: `face: eye_closure must be ...; ts must be ...`. */
export const describeViolations = (vs: readonly Violation[]): string =>
  vs
    .slice(0, 5)
    .map((v) => `${v.field} ${v.message}`)
    .join('; ') + (vs.length > 5 ? `; and ${vs.length - 5} more` : '');

/**
 * The accepted window of a device's `ts` around a clock the device does not control (the broker's
 * append time of the record, or the gateway's own clock). Defaults: 60 s ahead (clock skew), 24 h
 * behind (a device that buffered a shift while offline).
 */
export interface TsWindow {
  maxAheadMs: number;
  maxAgeMs: number;
}

export const DEFAULT_TS_WINDOW: TsWindow = { maxAheadMs: 60_000, maxAgeMs: 24 * 3_600_000 };

/** Why `ts` is outside the window around `reference` (undefined when inside). */
export function tsWindowViolation(ts: number, reference: number, w: TsWindow): Violation | undefined {
  if (ts > reference + w.maxAheadMs) {
    return {
      field: 'ts',
      rule: 'ts_ahead',
      message: `is ${Math.round((ts - reference) / 1000)} s ahead of the receiving clock (at most ${w.maxAheadMs / 1000} s allowed)`,
    };
  }
  if (ts < reference - w.maxAgeMs) {
    return {
      field: 'ts',
      rule: 'ts_too_old',
      message: `is ${Math.round((reference - ts) / 1000)} s behind the receiving clock (at most ${w.maxAgeMs / 1000} s allowed)`,
    };
  }
  return undefined;
}

/** The rule-table check as an error to dead-letter or throw (undefined when the event is good). */
export function ruleError(key: TopicKey, value: unknown): VigilError | undefined {
  const vs = violationsOf(key, value);
  if (vs.length === 0) return undefined;
  return new VigilError('RULE_VIOLATION', `${key}: ${describeViolations(vs)}`, { details: { violations: vs } });
}

/**
 * What every consumer refuses of one record before it reaches a session (docs/design.md §3): the rule
 * table, then a `ts` outside the accepted window around the record's append time (`message.timestamp`,
 * the broker's clock on LogAppendTime topics; stored with the record, so a replay decides the same).
 * The processor, `vigil rescore`, the projections and the jobs trigger all refuse with this.
 */
export function recordRefusal(
  key: TopicKey,
  value: unknown,
  appendTs: number,
  window: TsWindow = DEFAULT_TS_WINDOW,
): VigilError | undefined {
  const broken = ruleError(key, value);
  if (broken) return broken;
  const ts = (value as { ts?: unknown }).ts;
  const v = typeof ts === 'number' ? tsWindowViolation(ts, appendTs, window) : undefined;
  return v && new VigilError('TS_OUT_OF_WINDOW', `ts ${v.message}`, { details: { ...v, ts, append_ts: appendTs } });
}
