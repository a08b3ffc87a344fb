import {
  OpenAPIRegistry,
  OpenApiGeneratorV3,
  extendZodWithOpenApi,
  type ResponseConfig,
} from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { avroSchemaOf } from '../../schemas/catalogue';
import { streams, type Stream } from './batch';

/**
 * The ingest gateway's OpenAPI 3.0 document, served at `GET /openapi.json` (app.ts). As in the query
 * API (api/openapi.ts), the document comes from the schemas that validate the requests: the gateway
 * checks events against each topic's `.avsc` (AvroSerde.validate), so each route's request body is
 * generated from that `.avsc` (one JSON shape per event, `event.type` naming the union branch of
 * multi-kind topics, as schemas/types.ts), and the answers from zod schemas of the gateway's bodies.
 */
extendZodWithOpenApi(z);

/** One error of a refused batch (producers/gateway/batch.ts EventError). */
const EventErrorSchema = z.object({
  index: z.number().int().optional().openapi({ description: "position of the event in the request's array" }),
  field: z.string().openapi({ description: 'path of the offending field, e.g. `channels.0.quality`, or `(body)`' }),
  message: z.string(),
  rule: z.string().optional().openapi({ description: 'the rule of schemas/rules.ts it breaks, e.g. `fraction`' }),
});

type AvroType = string | AvroType[] | { type: string; [k: string]: unknown };
type JsonSchema = Record<string, unknown>;

const primitives: Record<string, JsonSchema> = {
  null: { nullable: true },
  boolean: { type: 'boolean' },
  int: { type: 'integer', format: 'int32' },
  long: { type: 'integer', format: 'int64' },
  float: { type: 'number', format: 'float' },
  double: { type: 'number', format: 'double' },
  string: { type: 'string' },
  bytes: { type: 'string' },
};

/**
 * Avro (as the gateway takes it in JSON) → an OpenAPI 3.0 schema object. Fields with a default may be
 * left out; `["null", T]` is T nullable; a union of records (the `event` of multi-kind topics) is
 * `oneOf` objects whose `type` names the branch. `tenant_id` is optional at the top: the key's tenant.
 */
function toJsonSchema(t: AvroType, named: Map<string, JsonSchema>, top = false): JsonSchema {
  if (typeof t === 'string') {
    const p = primitives[t] ?? named.get(t) ?? named.get(t.split('.').pop()!);
    if (!p) throw new Error(`gateway openapi: unknown Avro type ${t}`);
    return p;
  }
  if (Array.isArray(t)) {
    const branches = t.filter((b) => b !== 'null');
    if (branches.length === 1) {
      const inner = toJsonSchema(branches[0]!, named);
      return t.length > 1 ? { ...inner, nullable: true } : inner;
    }
    return {
      oneOf: branches.map((b) => {
        const record = toJsonSchema(b, named);
        const name = typeof b === 'object' && !Array.isArray(b) ? String(b.name) : String(b);
        return {
          ...record,
          required: ['type', ...((record.required as string[] | undefined) ?? [])],
          properties: {
            type: { type: 'string', enum: [name.split('.').pop()], description: 'the kind of event' },
            ...(record.properties as object),
          },
        };
      }),
    };
  }
  const doc = typeof t.doc === 'string' ? { description: t.doc } : {};
  let schema: JsonSchema;
  switch (t.type) {
    case 'record': {
      const fields = t.fields as { name: string; type: AvroType; doc?: string; default?: unknown }[];
      schema = { type: 'object', ...doc, properties: {}, required: [] };
      // Registered before the fields, so a recursive reference would resolve (none today).
      named.set(String(t.name), schema);
      for (const f of fields) {
        (schema.properties as Record<string, JsonSchema>)[f.name] = {
          ...toJsonSchema(f.type, named),
          ...(f.doc ? { description: f.doc } : {}),
        };
        const optional = f.default !== undefined || (top && f.name === 'tenant_id');
        if (!optional) (schema.required as string[]).push(f.name);
      }
      return schema;
    }
    case 'enum':
      schema = { type: 'string', enum: t.symbols, ...doc };
      named.set(String(t.name), schema);
      return schema;
    case 'array':
      return { type: 'array', items: toJsonSchema(t.items as AvroType, named), ...doc };
    case 'map':
      return { type: 'object', additionalProperties: toJsonSchema(t.values as AvroType, named), ...doc };
    default: {
      const base = toJsonSchema(t.type, named);
      if (t.logicalType === 'uuid') return { ...base, format: 'uuid', ...doc };
      if (t.logicalType === 'timestamp-millis')
        return { ...base, ...doc, description: 'milliseconds since the Unix epoch (UTC)' };
      return { ...base, ...doc };
    }
  }
}

/** The JSON shape of one event of a stream, from its topic's `.avsc`, and the record's name. */
export function eventSchemaOf(stream: Stream): { name: string; schema: JsonSchema } {
  const avsc = avroSchemaOf(streams[stream]) as { name: string; type: string };
  const schema = toJsonSchema(avsc as AvroType, new Map(), true);
  const tenant = (schema.properties as Record<string, JsonSchema>).tenant_id;
  if (tenant) {
    tenant.description =
      `${String(tenant.description ?? '')} Optional: an event without it gets the API key's tenant; naming another tenant refuses the request (403).`.trim();
  }
  return { name: avsc.name, schema };
}

export interface GatewayLimits {
  maxBodyBytes: number;
  maxEvents: number;
}

function buildDocument(limits: GatewayLimits): unknown {
  const registry = new OpenAPIRegistry();
  const Problem = registry.register(
    'Problem',
    z
      .object({
        type: z.string().openapi({ example: 'https://vigil.dev/problems/invalid-events' }),
        title: z.string(),
        status: z.number().int(),
        detail: z.string().optional(),
        errors: z.array(EventErrorSchema).optional().openapi({ description: 'at most 100 are listed' }),
        total_errors: z.number().int().optional(),
        streams: z.array(z.string()).optional().openapi({ description: 'with 404 on an unknown stream' }),
        max_events: z.number().int().optional().openapi({ description: 'with 413 over the events limit' }),
      })
      .openapi({ description: 'RFC 9457 problem details (application/problem+json)' }),
  );
  const Accepted = registry.register(
    'Accepted',
    z.object({ accepted: z.number().int().min(1).openapi({ description: 'events acknowledged by Kafka' }) }),
  );
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'API key of role `device` (`vigil keys create --tenant <t> --role device`)',
  });
  registry.registerComponent('securitySchemes', 'apiKeyHeader', { type: 'apiKey', in: 'header', name: 'X-API-Key' });

  type Headers = NonNullable<ResponseConfig['headers']>;
  const int = { type: 'integer' as const };
  const problemOf = (description: string, headers?: Headers): ResponseConfig => ({
    description,
    ...(headers ? { headers } : {}),
    content: { 'application/problem+json': { schema: Problem } },
  });
  const retryAfter = { description: 'seconds to wait before retrying', schema: int };
  const rateHeaders: Headers = {
    'RateLimit-Limit': { description: 'events per second allowed for this key', schema: int },
    'RateLimit-Remaining': { description: 'events left in the current second', schema: int },
    'RateLimit-Reset': { description: 'seconds until the window resets', schema: int },
  };

  for (const stream of Object.keys(streams) as Stream[]) {
    const { name, schema } = eventSchemaOf(stream);
    registry.registerComponent('schemas', name, schema);
    registry.registerPath({
      method: 'post',
      path: `/v1/ingest/${stream}`,
      operationId: `ingest_${stream}`,
      tags: ['ingest'],
      summary: `Publish ${stream} events to the ${streams[stream]} topic`,
      description: [
        `A JSON array of 1-${limits.maxEvents} events (\`VIGIL_GATEWAY_MAX_EVENTS\`), at most ${limits.maxBodyBytes} bytes (\`VIGIL_GATEWAY_MAX_BODY_BYTES\`).`,
        'The whole batch is checked before anything is sent: the Avro schema, the rule table (schemas/rules.ts), `ts` within the window around the gateway clock (`VIGIL_TS_MAX_AHEAD_MS` ahead, `VIGIL_TS_MAX_AGE_MS` behind), the tenant and the session owner.',
        'Either every event is published (202, after Kafka acknowledged each, acks=all) or none is. Events are keyed by `session_id`; `event_id` makes a repeat harmless. Key role: device.',
      ].join('\n\n'),
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      request: {
        body: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'array',
                minItems: 1,
                maxItems: limits.maxEvents,
                items: { $ref: `#/components/schemas/${name}` },
              },
            },
          },
        },
      },
      responses: {
        202: {
          description: 'every event was acknowledged by Kafka',
          headers: rateHeaders,
          content: { 'application/json': { schema: Accepted } },
        },
        400: problemOf(
          'the body is not JSON, not an array or empty (`errors[].field` = `(body)`), or events break the schema, the rule table or the ts window (`type` …/invalid-events, `errors: [{index, field, message, rule?}]`); nothing was published',
        ),
        401: problemOf('missing, unknown or revoked API key (`WWW-Authenticate: Bearer realm="vigil-ingest"`)', {
          'WWW-Authenticate': { description: 'Bearer realm="vigil-ingest"', schema: { type: 'string' as const } },
        }),
        403: problemOf(
          'the key is not of role device (…/forbidden), an event names another tenant (…/foreign-tenant, field `tenant_id`), or a session owned by another tenant (…/foreign-session, field `session_id`); nothing was published',
        ),
        413: problemOf(
          'the body is over VIGIL_GATEWAY_MAX_BODY_BYTES (…/body-too-large) or holds more than VIGIL_GATEWAY_MAX_EVENTS events (…/too-many-events)',
        ),
        415: problemOf('the body is not application/json'),
        429: problemOf(
          "over the key's events per second (VIGIL_GATEWAY_RATE_PER_SEC) or the client address's requests per minute (VIGIL_GATEWAY_ADDRESS_RATE_PER_MIN)",
          { 'Retry-After': retryAfter, ...rateHeaders },
        ),
        503: problemOf('Kafka, the registry or PostgreSQL is unavailable, or the gateway is still starting', {
          'Retry-After': retryAfter,
        }),
      },
    });
  }

  const Health = z.object({ status: z.string() }).passthrough();
  registry.registerPath({
    method: 'get',
    path: '/health/live',
    tags: ['health'],
    summary: 'The process is up (no key needed)',
    responses: { 200: { description: 'alive', content: { 'application/json': { schema: Health } } } },
  });
  registry.registerPath({
    method: 'get',
    path: '/health/ready',
    tags: ['health'],
    summary: 'Kafka, the registry and PostgreSQL answer (no key needed)',
    responses: {
      200: {
        description: 'ready (`degraded` when only Redis, optional, is down)',
        content: { 'application/json': { schema: Health } },
      },
      503: problemOf('a required dependency is down (`failed` names it; Redis is optional)'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    tags: ['docs'],
    summary: 'This document',
    responses: {
      200: { description: 'OpenAPI 3.0 document', content: { 'application/json': { schema: z.object({}) } } },
    },
  });

  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: {
      title: 'Vigil ingest gateway',
      version: '1',
      description:
        'HTTP ingest for devices that do not speak Kafka: each route publishes a batch of events to one topic, all or nothing. Errors are application/problem+json. See docs/publishing.md.',
    },
  });
}

/** `GET /openapi.json`: the document for these limits, built once. */
export function gatewayOpenApi(limits: GatewayLimits): RequestHandler {
  let doc: unknown;
  return (_req, res) => {
    doc ??= buildDocument(limits);
    res.json(doc);
  };
}
