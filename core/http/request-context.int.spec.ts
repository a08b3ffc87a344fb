import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { trace } from '@opentelemetry/api';
import { node, tracing } from '@opentelemetry/sdk-node';
import { requestContext } from './request-context';

/**
 * The HTTP server span Vigil makes itself (the HTTP instrumentation's incoming side is off), over a
 * real loopback server with the SDK's tracer provider, ALS context manager and W3C propagator.
 */
describe('requestContext: the HTTP server span', () => {
  const exporter = new tracing.InMemorySpanExporter();
  const provider = new node.NodeTracerProvider({
    sampler: new tracing.ParentBasedSampler({ root: new tracing.AlwaysOnSampler() }),
    spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
  });
  let server: Server;
  let base: string;
  /** What the handler saw as its active span: the trace a log line or a Kafka header would carry. */
  let seen: { traceId: string; spanId: string } | undefined;

  beforeAll(async () => {
    provider.register();
    const app = express();
    app.use(requestContext);
    app.get('/v1/things/:id', (_req, res) => {
      seen = trace.getActiveSpan()?.spanContext();
      res.json({ ok: true });
    });
    app.get('/v1/broken', () => {
      throw new Error('boom');
    });
    app.post('/v1/echo', express.json(), (req, res) => {
      seen = trace.getActiveSpan()?.spanContext();
      res.json(req.body);
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await provider.shutdown();
    trace.disable();
  });
  beforeEach(() => {
    exporter.reset();
    seen = undefined;
  });

  /** The spans ended so far, once `n` of them are (a span ends when its response has been sent). */
  const spans = async (n: number) => {
    for (let i = 0; i < 100 && exporter.getFinishedSpans().length < n; i++) await new Promise((r) => setTimeout(r, 10));
    return exporter.getFinishedSpans();
  };

  it('names the span by the matched route, never by the path, and records the status', async () => {
    const res = await fetch(`${base}/v1/things/session-42`, { headers: { 'user-agent': 'spec' } });
    expect(res.status).toBe(200);
    const [span] = await spans(1);
    expect({ name: span!.name, kind: span!.kind, attributes: span!.attributes }).toEqual({
      name: 'get /v1/things/:id',
      kind: 1, // SpanKind.SERVER
      attributes: expect.objectContaining({
        'http.request.method': 'GET',
        'http.route': '/v1/things/:id',
        'url.path': '/v1/things/session-42',
        'http.response.status_code': 200,
        'user_agent.original': 'spec',
      }),
    });
    expect(span!.status.code).toBe(0); // UNSET: not an error
  });

  it("continues the caller's trace and names its server span in the response's traceparent", async () => {
    const caller = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
    const res = await fetch(`${base}/v1/things/a`, {
      headers: { traceparent: `00-${caller.traceId}-${caller.spanId}-01` },
    });
    const [span] = await spans(1);
    const ctx = span!.spanContext();
    expect({ traceId: ctx.traceId, parent: span!.parentSpanContext?.spanId }).toEqual({
      traceId: caller.traceId,
      parent: caller.spanId,
    });
    expect(res.headers.get('traceparent')).toBe(`00-${caller.traceId}-${ctx.spanId}-01`);
    expect(seen).toEqual(expect.objectContaining({ traceId: caller.traceId, spanId: ctx.spanId }));
  });

  it('records nothing for a caller that did not sample its trace, yet runs the request in that trace', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await fetch(`${base}/v1/things/b`, { headers: { traceparent: `00-${traceId}-b7ad6b7169203331-00` } });
    expect(res.status).toBe(200);
    expect(seen?.traceId).toBe(traceId);
    expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    await new Promise((r) => setTimeout(r, 50));
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('keeps the span around a JSON body, so what runs after the parser is in the trace', async () => {
    const res = await fetch(`${base}/v1/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(await res.json()).toEqual({ a: 1 });
    const [span] = await spans(1);
    expect(seen).toEqual(
      expect.objectContaining({ traceId: span!.spanContext().traceId, spanId: span!.spanContext().spanId }),
    );
    expect(span!.name).toBe('post /v1/echo');
  });

  it('marks a 5xx answer as an error and leaves an unmatched path unnamed', async () => {
    expect((await fetch(`${base}/v1/broken`)).status).toBe(500);
    expect((await fetch(`${base}/nowhere/12345`)).status).toBe(404);
    const byName = new Map((await spans(2)).map((s) => [s.name, s]));
    expect(byName.get('get /v1/broken')!.status.code).toBe(2); // ERROR
    expect(byName.get('get /v1/broken')!.attributes['error.type']).toBe('500');
    const unmatched = byName.get('get')!;
    expect(unmatched.attributes['http.route']).toBeUndefined();
    expect(unmatched.attributes['http.response.status_code']).toBe(404);
  });

  it('echoes a well-formed X-Request-Id and replaces one that is not', async () => {
    const good = await fetch(`${base}/v1/things/c`, { headers: { 'x-request-id': 'req-1.a_b' } });
    expect(good.headers.get('x-request-id')).toBe('req-1.a_b');
    const bad = await fetch(`${base}/v1/things/c`, { headers: { 'x-request-id': 'not a valid id!' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
