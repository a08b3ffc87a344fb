import { avroSchemaOf, type TopicKey } from '../../schemas/catalogue';

/**
 * Turns the serde's validation problems (`<avro path>: expected <avro type name>, got <json>`, see
 * `AvroSerde.validate`) into what a device developer can act on: the field as it appears in their
 * JSON (`event.reason`, `channels.0.quality`) and the rule in words, read from the topic's `.avsc`
 * (`must be one of "COMPLETED", "ABORTED", "TIMEOUT"`, `must be an integer of milliseconds since the
 * Unix epoch`). A problem whose path cannot be followed in the schema keeps the serde's wording.
 */
interface FieldError {
  field: string;
  message: string;
}

type AvroSchema = string | AvroSchema[] | { type: string | AvroSchema; [k: string]: unknown };

interface Named {
  type: 'record' | 'enum' | 'fixed';
  name: string;
  fields?: { name: string; type: AvroSchema }[];
  symbols?: string[];
}

/** A topic's schema with its named types resolved by full name. */
interface Index {
  root: AvroSchema;
  /** Named types (records, enums, fixed) by full name, as defined in the file. */
  named: Map<string, AvroSchema>;
  /** Full name of each named type definition. */
  fullNames: WeakMap<object, string>;
  /** Namespace in force where each name reference appears. */
  namespaceOf: Map<AvroSchema, string>;
}

const indexes = new Map<TopicKey, Index>();

function indexOf(key: TopicKey): Index {
  let index = indexes.get(key);
  if (!index) {
    const root = avroSchemaOf(key) as AvroSchema;
    index = { root, named: new Map(), fullNames: new WeakMap(), namespaceOf: new Map() };
    collect(root, '', index);
    indexes.set(key, index);
  }
  return index;
}

function collect(s: AvroSchema, ns: string, index: Index): void {
  index.namespaceOf.set(s, ns);
  if (Array.isArray(s)) return s.forEach((b) => collect(b, ns, index));
  if (typeof s === 'string') return;
  if (typeof s.type === 'object') return collect(s.type, ns, index);
  if (s.type === 'record' || s.type === 'enum' || s.type === 'fixed') {
    const n = s as unknown as Named & { namespace?: string };
    const full = n.name.includes('.')
      ? n.name
      : n.namespace
        ? `${n.namespace}.${n.name}`
        : ns
          ? `${ns}.${n.name}`
          : n.name;
    index.named.set(full, s);
    index.fullNames.set(s, full);
    const inner = full.slice(0, full.lastIndexOf('.') >= 0 ? full.lastIndexOf('.') : 0);
    for (const f of n.fields ?? []) collect(f.type, inner, index);
  } else if (s.type === 'array') collect(s.items as AvroSchema, ns, index);
  else if (s.type === 'map') collect(s.values as AvroSchema, ns, index);
}

/** Resolves a name reference to its definition; other schemas are returned as they are. */
function resolve(s: AvroSchema, index: Index): AvroSchema {
  if (typeof s !== 'string' || primitives.has(s)) return s;
  const ns = index.namespaceOf.get(s) ?? '';
  return index.named.get(s) ?? index.named.get(`${ns}.${s}`) ?? s;
}

const primitives = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

const shortName = (full: string) => full.slice(full.lastIndexOf('.') + 1);

/** The rule of a schema in words, e.g. `an integer`, `null or a number`, `one of "A", "B"`. */
function describe(s: AvroSchema, index: Index): string {
  const r = resolve(s, index);
  if (Array.isArray(r)) {
    const branches = r.map((b) => resolve(b, index));
    const records = branches.filter((b): b is Named & { type: 'record' } & AvroSchema => isNamed(b, 'record'));
    if (records.length === branches.length && records.length > 1) {
      return `an object whose "type" is one of ${records.map((b) => JSON.stringify(shortName(b.name))).join(', ')}`;
    }
    return branches.map((b) => describe(b, index)).join(' or ');
  }
  if (typeof r === 'string') return describePrimitive(r);
  const logical = typeof r.logicalType === 'string' ? r.logicalType : undefined;
  if (logical === 'timestamp-millis') return 'an integer of milliseconds since the Unix epoch (timestamp-millis)';
  if (logical === 'uuid') return 'a UUID string';
  if (typeof r.type === 'object') return describe(r.type, index);
  switch (r.type) {
    case 'record':
      return `an object (${shortName(String(r.name))})`;
    case 'enum':
      return `one of ${(r.symbols as string[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'array':
      return 'an array';
    case 'map':
      return 'an object';
    default:
      return describePrimitive(r.type);
  }
}

function describePrimitive(t: string): string {
  return (
    {
      null: 'null',
      boolean: 'true or false',
      int: 'an integer (32-bit)',
      long: 'an integer',
      float: 'a number',
      double: 'a number',
      bytes: 'bytes',
      string: 'a string',
    }[t] ?? t
  );
}

const isNamed = (s: AvroSchema, type: Named['type']): boolean =>
  typeof s === 'object' && !Array.isArray(s) && s.type === type;

/**
 * Follows an avsc error path through the schema. avsc joins path segments with "." and names a
 * wrapped union's branch by its full name (itself dotted), so at a union the walk tries each branch's
 * full name against the next segments. Returns the JSON field path and the schema found there.
 */
function follow(rawPath: string, index: Index): { field: string; schema: AvroSchema; kind?: string } | undefined {
  if (rawPath === '(value)' || rawPath === '') return { field: '(value)', schema: index.root };
  const tokens = rawPath.split('.');
  const field: string[] = [];
  let s = resolve(index.root, index);
  let kind: string | undefined;
  let i = 0;
  while (i < tokens.length) {
    if (Array.isArray(s)) {
      const branches = s.map((b) => resolve(b, index));
      const fullOf = (b: AvroSchema) => (typeof b === 'object' ? index.fullNames.get(b) : undefined);
      const named = branches.find((b) => {
        const full = fullOf(b);
        return full !== undefined && tokens.slice(i, i + full.split('.').length).join('.') === full;
      });
      if (named) {
        const full = fullOf(named)!;
        i += full.split('.').length;
        kind = shortName(full);
        s = named;
        continue;
      }
      // An unwrapped union (e.g. ["null", "float"]): continue in its one non-null branch.
      const nonNull = branches.filter((b) => b !== 'null');
      if (nonNull.length !== 1) return undefined;
      s = nonNull[0]!;
      continue;
    }
    const token = tokens[i]!;
    if (typeof s === 'object' && s.type === 'record') {
      const f = (s as unknown as Named).fields?.find((x) => x.name === token);
      if (!f) return undefined;
      field.push(token);
      s = resolve(f.type, index);
    } else if (typeof s === 'object' && s.type === 'array' && /^\d+$/.test(token)) {
      field.push(token);
      s = resolve(s.items as AvroSchema, index);
    } else if (typeof s === 'object' && s.type === 'map') {
      field.push(token);
      s = resolve(s.values as AvroSchema, index);
    } else {
      return undefined;
    }
    i += 1;
  }
  return { field: field.join('.'), schema: s, kind };
}

const PROBLEM_RE = /^(.*?): expected (.*?), got ([\s\S]*)$/;

/** One serde problem string of topic `key` → field and message. */
export function toFieldError(key: TopicKey, problem: string): FieldError {
  const m = PROBLEM_RE.exec(problem);
  if (!m) {
    const at = problem.indexOf(': ');
    return at > 0
      ? { field: problem.slice(0, at), message: problem.slice(at + 2) }
      : { field: '(value)', message: problem };
  }
  const [, rawPath, rule, got] = m as unknown as [string, string, string, string];
  const index = indexOf(key);
  const found = follow(rawPath, index);
  if (!found) return { field: rawPath, message: `expected ${rule}, got ${preview(got)}` };
  const inKind = found.kind ? ` (in ${found.kind})` : '';
  const rule2 = describe(found.schema, index);
  const message = got === 'undefined' ? `is required: ${rule2}` : `must be ${rule2}, got ${preview(got)}`;
  return { field: found.field, message: message + inKind };
}

const preview = (json: string) => (json.length > 80 ? `${json.slice(0, 77)}...` : json);
