import avro from 'avsc';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { avroSchemaOf, subjectOf, type TopicKey, type TopicNames, type ValueOf } from '../schemas/catalogue';
import { VigilError, messageOf } from './errors';

/**
 * The one serde path: Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro body).
 *
 * Registration goes through @kafkajs/confluent-schema-registry (which also caches schemas by id);
 * encoding and decoding use avsc types held here, so steady state makes no registry request per
 * message: writer types are registered once at start-up, reader types are fetched once per unknown id.
 *
 * Multi-kind topics keep the kind in `event.type` in the application and in the Avro union branch on
 * the wire; `toAvro`/`fromAvro` translate between the two.
 */

const MAGIC = 0;
const HEADER = 5;

type Compatibility = 'BACKWARD_TRANSITIVE';

/**
 * How a record's `event` union looks in avsc: a union of several records is wrapped
 * (`{'ns.Kind': {...}}`), a union of one record is not. `branches` maps short kind names
 * (e.g. SessionStarted) to full Avro names.
 */
export interface EventShape {
  wrapped: boolean;
  branches: Map<string, string>;
}

export interface Codec {
  type: avro.Type;
  shape: EventShape;
}

interface Writer extends Codec {
  id: number;
}

export interface Decoded<T = unknown> {
  schemaId: number;
  value: T;
}

/** HTTP basic auth of the schema registry (VIGIL_SCHEMA_REGISTRY_USERNAME / _PASSWORD). */
export interface RegistryAuth {
  username: string;
  password: string;
}

/** The Authorization header for the registry (empty without auth): for the few raw fetches. */
export const registryHeaders = (auth?: RegistryAuth): Record<string, string> =>
  auth ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {};

export class AvroSerde {
  private readonly registry: SchemaRegistry;
  private readonly writers = new Map<TopicKey, Writer>();
  private readonly readers = new Map<number, Codec>();
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** Registry round trips made by this serde (registration and unknown-id look-ups). */
  registryRequests = 0;

  constructor(
    private readonly registryUrl: string,
    private readonly topics: TopicNames,
    private readonly auth?: RegistryAuth,
  ) {
    this.registry = new SchemaRegistry({
      host: registryUrl,
      auth: auth && { username: auth.username, password: auth.password },
      retry: { retries: 2 },
    });
  }

  /**
   * Registers the value schema of each topic (idempotent: the registry answers the existing id for a
   * schema it already holds), sets the subject's compatibility, and keeps the writer type for encoding.
   */
  async register(keys: readonly TopicKey[], compatibility: Compatibility = 'BACKWARD_TRANSITIVE'): Promise<void> {
    for (const key of keys) {
      const schema = avroSchemaOf(key);
      const subject = subjectOf(this.topics[key]);
      await this.setCompatibility(subject, compatibility);
      let id: number;
      try {
        this.registryRequests += 2;
        ({ id } = await this.registry.register(
          { type: 'AVRO' as never, schema: JSON.stringify(schema) },
          { subject, compatibility: compatibility as never },
        ));
      } catch (cause) {
        throw registryError(`registering ${subject}`, cause);
      }
      const codec = codecOf(schema);
      this.writers.set(key, { id, ...codec });
      this.readers.set(id, codec);
    }
  }

  /** The registry's id for a topic's writer schema (after `register`). */
  schemaIdOf(key: TopicKey): number {
    return this.writerOf(key).id;
  }

  /**
   * Validates and encodes one value. Throws EVENT_INVALID naming every offending field path.
   */
  encode<K extends TopicKey>(key: K, value: ValueOf<K>): Buffer {
    const w = this.writerOf(key);
    const avroValue = toAvro(value, w.shape);
    // avsc's `encode` into a reused scratch buffer is about 3x faster than `toBuffer` here; the
    // result is copied out, so the scratch is free again when this returns.
    let end: number;
    try {
      end = w.type.encode(avroValue, this.scratch, HEADER);
    } catch (cause) {
      throw invalidEvent(w.type, avroValue, this.topics[key], cause);
    }
    if (end < 0) {
      this.scratch = Buffer.allocUnsafe(Math.max(-end, this.scratch.length * 2));
      return this.encode(key, value);
    }
    this.scratch.writeUInt8(MAGIC, 0);
    this.scratch.writeInt32BE(w.id, 1);
    return Buffer.from(this.scratch.subarray(0, end));
  }

  /** Checks a value against a topic's schema without encoding it; returns the problems found. */
  validate<K extends TopicKey>(key: K, value: unknown): string[] {
    const w = this.writerOf(key);
    return invalidPaths(w.type, toAvro(value, w.shape));
  }

  /**
   * Decodes a Confluent-framed Avro value. Bad framing or a body that does not match its schema →
   * EVENT_UNDECODABLE; an id the registry does not know → SCHEMA_UNKNOWN (both not retriable: the
   * record is poison). An unreachable registry → SCHEMA_REGISTRY_UNAVAILABLE (retriable).
   */
  async decode<T = unknown>(buf: Buffer | null): Promise<Decoded<T>> {
    const schemaId = schemaIdIn(buf);
    const reader = this.readers.get(schemaId) ?? (await this.fetchReader(schemaId));
    return decodeWith<T>(buf!, schemaId, reader);
  }

  /**
   * The synchronous fast path of `decode` for hot loops: the decoded value when the writer schema is
   * already known, `undefined` when it must first be fetched (then call `decode`). Same errors.
   */
  decodeKnown<T = unknown>(buf: Buffer | null): Decoded<T> | undefined {
    const schemaId = schemaIdIn(buf);
    const reader = this.readers.get(schemaId);
    return reader && decodeWith<T>(buf!, schemaId, reader);
  }

  private writerOf(key: TopicKey): Writer {
    const w = this.writers.get(key);
    if (!w) throw new Error(`serde: schema of ${key} not registered (call register first)`);
    return w;
  }

  private async fetchReader(id: number): Promise<Codec> {
    this.registryRequests += 1;
    let schema: unknown;
    try {
      schema = await this.registry.getSchema(id);
    } catch (cause) {
      const status = (cause as { status?: number }).status;
      if (status === 404)
        throw new VigilError('SCHEMA_UNKNOWN', `schema id ${id} is unknown to the registry`, { cause });
      throw registryError(`fetching schema ${id}`, cause);
    }
    // The library hands back its own avsc Type; rebuild from its JSON so we control the options.
    const codec = codecOf(JSON.parse(JSON.stringify(schema)) as object);
    this.readers.set(id, codec);
    return codec;
  }

  private async setCompatibility(subject: string, compatibility: Compatibility): Promise<void> {
    this.registryRequests += 1;
    let res: Response;
    try {
      res = await fetch(`${this.registryUrl}/config/${encodeURIComponent(subject)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json', ...registryHeaders(this.auth) },
        body: JSON.stringify({ compatibility }),
      });
    } catch (cause) {
      throw registryError(`setting compatibility of ${subject}`, cause);
    }
    if (!res.ok) throw registryError(`setting compatibility of ${subject}`, new Error(`HTTP ${res.status}`));
  }
}

function schemaIdIn(buf: Buffer | null): number {
  if (!buf || buf.length < HEADER || buf.readUInt8(0) !== MAGIC) {
    throw new VigilError('EVENT_UNDECODABLE', 'value is not in the Confluent wire format (magic byte 0 + schema id)');
  }
  return buf.readInt32BE(1);
}

function decodeWith<T>(buf: Buffer, schemaId: number, reader: Codec): Decoded<T> {
  let value: unknown;
  try {
    value = reader.type.fromBuffer(buf.subarray(HEADER));
  } catch (cause) {
    throw new VigilError('EVENT_UNDECODABLE', `Avro body does not match schema ${schemaId}: ${messageOf(cause)}`, {
      cause,
    });
  }
  return { schemaId, value: fromAvro(value, reader.shape) as T };
}

function registryError(what: string, cause: unknown): VigilError {
  const status = (cause as { status?: number }).status;
  const retriable = status === undefined || status >= 500;
  return new VigilError(
    retriable ? 'SCHEMA_REGISTRY_UNAVAILABLE' : 'SCHEMA_UNKNOWN',
    `schema registry: ${what}: ${messageOf(cause)}`,
    { cause, retriable },
  );
}

/** Every field path whose value breaks the schema, as `path: rule` strings. */
function invalidPaths(type: avro.Type, value: unknown): string[] {
  const problems: string[] = [];
  type.isValid(value, {
    errorHook: (path, v, t) => {
      const rule = t.typeName === 'record' ? 'a record' : String(t.typeName ?? JSON.stringify(t.schema()));
      problems.push(`${path.join('.') || '(value)'}: expected ${rule}, got ${JSON.stringify(v)}`);
    },
  });
  return problems;
}

function invalidEvent(type: avro.Type, value: unknown, topic: string, cause: unknown): VigilError {
  const problems = invalidPaths(type, value);
  const fields = problems.length ? problems : [messageOf(cause)];
  return new VigilError('EVENT_INVALID', `invalid ${topic} event: ${fields.join('; ')}`, {
    cause,
    details: { topic, problems: fields },
  });
}

export function codecOf(schema: object): Codec {
  const type = avro.Type.forSchema(schema as avro.Schema);
  const shape: EventShape = { wrapped: false, branches: new Map() };
  const field = type.typeName === 'record' ? (type as avro.types.RecordType).field('event') : undefined;
  if (field?.type.typeName === 'union:wrapped' || field?.type.typeName === 'union:unwrapped') {
    shape.wrapped = field.type.typeName === 'union:wrapped';
    for (const t of (field.type as avro.types.WrappedUnionType).types) {
      if (t.name) shape.branches.set(shortName(t.name), t.name);
    }
  }
  return { type, shape };
}

const shortName = (full: string) => full.slice(full.lastIndexOf('.') + 1);

/** `{event: {type: 'X', ...f}}` → the Avro shape of the `event` union (see EventShape). */
export function toAvro(value: unknown, shape: EventShape): unknown {
  if (shape.branches.size === 0 || !isObject(value) || !isObject(value.event)) return value;
  const { type, ...fields } = value.event;
  const full = typeof type === 'string' ? shape.branches.get(type) : undefined;
  // An unknown kind is left as is, so validation reports it on the `event` path.
  if (!full) return value;
  return { ...value, event: shape.wrapped ? { [full]: fields } : fields };
}

/** The inverse of `toAvro`. */
function fromAvro(value: unknown, shape: EventShape): unknown {
  if (shape.branches.size === 0 || !isObject(value) || !isObject(value.event)) return value;
  if (!shape.wrapped) return { ...value, event: { type: [...shape.branches.keys()][0], ...value.event } };
  const full = Object.keys(value.event)[0];
  const inner = full === undefined ? undefined : value.event[full];
  if (!isObject(inner)) return value;
  return { ...value, event: { type: shortName(full!), ...inner } };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
