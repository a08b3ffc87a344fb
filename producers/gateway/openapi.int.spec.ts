import { testConfig } from '../../test/support/env';
import { gatewayFixture, type GatewayFixture } from '../../test/support/gateway';
import { createApiKey } from '../../core/api-keys';
import { sessionEvents } from '../simulator/session';
import { streams, type Stream } from './batch';

/**
 * The gateway's OpenAPI document (`GET /openapi.json`, producers/gateway/openapi.ts) served by a
 * gateway wired as `vigil gateway` wires it (real Kafka, registry, PostgreSQL, Redis): every ingest
 * route is documented with its request body (an array of the topic's events, from its `.avsc`) and
 * its error answers, and what the gateway really answers matches what the document says.
 */
const config = testConfig();
const TENANT = 'fleet-doc';

interface Schema {
  type?: string;
  $ref?: string;
  items?: Schema;
  maxItems?: number;
  minItems?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  oneOf?: Schema[];
}
interface Operation {
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }>;
  security?: unknown[];
}
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const ERRORS = ['400', '401', '403', '413', '415', '429', '503'];

describe('gateway OpenAPI document', () => {
  let fx: GatewayFixture;
  let url: string;
  let doc: Doc;
  let deviceKey: string;

  beforeAll(async () => {
    fx = await gatewayFixture(config);
    deviceKey = (await createApiKey(fx.pool, { tenantId: TENANT, role: 'device' })).key;
    url = await fx.start();
    const res = await fetch(`${url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = (await res.json()) as Doc;
  });
  afterAll(() => fx?.close());

  const componentOf = (ref: string | undefined): Schema => {
    expect(ref).toMatch(/^#\/components\/schemas\//);
    const schema = doc.components.schemas[ref!.split('/').pop()!];
    expect(schema).toBeDefined();
    return schema!;
  };

  it('is an OpenAPI 3.0 document served without a key', () => {
    expect(doc.openapi).toMatch(/^3\.0\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health/live', '/health/ready', '/openapi.json']));
  });

  it.each(Object.keys(streams) as Stream[])(
    'documents POST /v1/ingest/%s: body, 202 and every error answer',
    (stream) => {
      const op = doc.paths[`/v1/ingest/${stream}`]?.post;
      expect(op).toBeDefined();
      expect(op!.security).toEqual([{ bearerAuth: [] }, { apiKeyHeader: [] }]);
      const body = op!.requestBody!.content['application/json']!.schema;
      expect(op!.requestBody!.required).toBe(true);
      expect(body).toMatchObject({ type: 'array', minItems: 1, maxItems: config.gateway.maxEvents });
      const event = componentOf(body.items?.$ref);
      expect(event.type).toBe('object');
      expect(event.required).toEqual(expect.arrayContaining(['event_id', 'session_id', 'ts']));
      expect(event.required).not.toContain('tenant_id'); // the key's tenant when absent
      expect(event.properties).toHaveProperty('tenant_id');
      expect(Object.keys(op!.responses['202']!.content!)).toEqual(['application/json']);
      for (const status of ERRORS) {
        expect(op!.responses).toHaveProperty(status);
        expect(Object.keys(op!.responses[status]!.content!)).toEqual(['application/problem+json']);
      }
      expect(op!.responses['429']!.headers).toHaveProperty('Retry-After');
      expect(op!.responses['503']!.headers).toHaveProperty('Retry-After');
    },
  );

  it('describes the events the simulator sends, and the gateway accepts them (202, a documented answer)', async () => {
    const plan = {
      seed: 5,
      index: 0,
      tenantId: TENANT,
      startTs: Math.floor(Date.now() / 60_000) * 60_000 - 5 * 60_000,
      durationMs: 20_000,
    };
    const byTopic = new Map<string, Record<string, unknown>[]>();
    for (const e of sessionEvents({ ...plan, profile: 'alert' })) {
      byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e.event as unknown as Record<string, unknown>]);
    }
    // Sessions first: the session must exist before its telemetry is meaningful (and owned by TENANT).
    for (const stream of ['sessions', 'eeg', 'face', 'vehicle', 'game'] as Stream[]) {
      const events = (byTopic.get(streams[stream]) ?? []).slice(0, 20);
      if (!events.length) continue;
      const schema = componentOf(
        doc.paths[`/v1/ingest/${stream}`]!.post!.requestBody!.content['application/json']!.schema.items!.$ref,
      );
      for (const event of events) {
        // Every field sent is documented and every required field is sent; `event` names its branch.
        expect(Object.keys(schema.properties!)).toEqual(expect.arrayContaining(Object.keys(event)));
        expect(Object.keys(event)).toEqual(expect.arrayContaining(schema.required!));
        const kind = (event.event as { type?: string } | undefined)?.type;
        if (kind) {
          const branch = schema.properties!.event!.oneOf!.find(
            (b) => (b.properties!.type as { enum?: string[] }).enum?.[0] === kind,
          );
          expect(branch).toBeDefined();
          expect(Object.keys(branch!.properties!)).toEqual(expect.arrayContaining(Object.keys(event.event as object)));
        }
      }
      const res = await fetch(`${url}/v1/ingest/${stream}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${deviceKey}` },
        body: JSON.stringify(events),
      });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ accepted: events.length });
    }
  });

  it('lists the statuses the gateway really answers for bad requests', async () => {
    const op = doc.paths['/v1/ingest/eeg']!.post!;
    const send = (body: string, headers: Record<string, string>) =>
      fetch(`${url}/v1/ingest/eeg`, { method: 'POST', headers, body });
    const answers = [
      await send('[]', { 'content-type': 'application/json' }), // 401 no key
      await send('[]', { 'content-type': 'application/json', authorization: `Bearer ${deviceKey}` }), // 400 empty
      await send('x', { 'content-type': 'text/plain', authorization: `Bearer ${deviceKey}` }), // 415
      await send('[{"event_id":"nope"}]', { 'content-type': 'application/json', authorization: `Bearer ${deviceKey}` }), // 400
    ];
    expect(answers.map((r) => r.status)).toEqual([401, 400, 415, 400]);
    for (const r of answers) {
      expect(op.responses).toHaveProperty(String(r.status));
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });
});
