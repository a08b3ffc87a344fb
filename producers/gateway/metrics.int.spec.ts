import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { testConfig } from '../../test/support/env';
import { gatewayFixture, type GatewayFixture } from '../../test/support/gateway';
import { sample, scrape } from '../../test/support/metrics';
import { createApiKey } from '../../core/api-keys';
import { startMetricsServer } from '../../core/metrics-server';
import { sessionEvents } from '../simulator/session';
import type { EegBandPower } from '../../schemas/types';

/**
 * The gateway's counters (docs/metrics.md) after real requests to a gateway in process on the real stack,
 * scraped over HTTP from the metrics server: accepted events, and refusals by reason.
 */
describe('gateway metrics (in process, real Kafka, PostgreSQL, Redis; scraped over HTTP)', () => {
  const config = testConfig();
  let fx: GatewayFixture;
  let base: string;
  let metricsUrl: string;
  let server: Server;
  let key: string;
  const plan = {
    seed: 8,
    index: 0,
    tenantId: 'fleet-m',
    startTs: Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000,
    durationMs: 5_000,
  };
  const eeg = [...sessionEvents({ ...plan, profile: 'alert' })]
    .filter((e) => e.topic === 'eeg')
    .map((e) => e.event as EegBandPower);

  beforeAll(async () => {
    fx = await gatewayFixture(config);
    key = (await createApiKey(fx.pool, { tenantId: plan.tenantId, role: 'device' })).key;
    base = await fx.start();
    ({ server, url: metricsUrl } = await startMetricsServer('127.0.0.1', 0));
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await fx?.close();
  });

  const post = (body: unknown, auth = `Bearer ${key}`) =>
    fetch(`${base}/v1/ingest/eeg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body: JSON.stringify(body),
    });
  const count = (text: string, labels: Record<string, string>) =>
    sample(text, 'vigil_gateway_events_total', { stream: 'eeg', ...labels }) ?? 0;
  const requests = (text: string, labels: Record<string, string>) =>
    sample(text, 'vigil_gateway_requests_total', { stream: 'eeg', ...labels }) ?? 0;

  it('counts accepted events and refused ones by reason', async () => {
    const before = await scrape(metricsUrl);
    const accepted = eeg.slice(0, 10);
    expect((await post(accepted)).status).toBe(202);
    // A ts a day and an hour old: outside the window.
    const old = eeg.slice(10, 13).map((e) => ({ ...e, event_id: randomUUID(), ts: e.ts - 25 * 3_600_000 }));
    expect((await post(old)).status).toBe(400);
    // Another tenant named in the body.
    const foreign = eeg.slice(13, 15).map((e) => ({ ...e, tenant_id: 'someone-else' }));
    expect((await post(foreign)).status).toBe(403);
    // A field outside its rule (event_id must be a UUID), and one against the Avro schema.
    expect((await post(eeg.slice(15, 16).map((e) => ({ ...e, event_id: 'not-a-uuid' })))).status).toBe(400);
    expect((await post(eeg.slice(16, 20).map((e) => ({ ...e, seq: 'four' })))).status).toBe(400);
    expect((await post(accepted, 'Bearer nope')).status).toBe(401);

    const after = await scrape(metricsUrl);
    const delta = (f: (t: string) => number) => f(after) - f(before);
    expect(delta((t) => count(t, { outcome: 'accepted', reason: '' }))).toBe(10);
    expect(delta((t) => count(t, { outcome: 'refused', reason: 'ts_out_of_window' }))).toBe(3);
    expect(delta((t) => count(t, { outcome: 'refused', reason: 'tenant_mismatch' }))).toBe(2);
    expect(delta((t) => count(t, { outcome: 'refused', reason: 'rule_violation' }))).toBe(1);
    expect(delta((t) => count(t, { outcome: 'refused', reason: 'schema' }))).toBe(4);
    // Refused before the body is read: a request, no events.
    expect(delta((t) => requests(t, { outcome: 'refused', reason: 'unauthenticated' }))).toBe(1);
    expect(delta((t) => requests(t, { outcome: 'accepted', reason: '' }))).toBe(1);
    expect(
      delta((t) => sample(t, 'vigil_gateway_request_duration_seconds_count', { stream: 'eeg', status: '202' }) ?? 0),
    ).toBe(1);
  });
});
