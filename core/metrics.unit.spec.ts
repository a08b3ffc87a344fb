import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Request, Response } from 'express';
import { metricsText, registerRole, setReady } from './metrics';
import { ProjectionMetrics } from './metrics-projection';
import { processorInstruments } from '../processors/metrics';
import { jobFinished, queueDepths, webhookPosted } from '../jobs/metrics';
import { ingestMetrics, refused } from '../producers/gateway/metrics';
import { recordSseClients, requestMetrics } from '../api/metrics';
import { sample, series, types } from '../test/support/metrics';

/** docs/metrics.md's table: name → { type, labels }. */
function contract(): Map<string, { type: string; labels: Set<string> }> {
  const doc = readFileSync(path.join(__dirname, '..', 'docs', 'metrics.md'), 'utf8');
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const line of doc.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (!cells[1]?.startsWith('`')) continue;
    const names = [...cells[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const labels = new Set([...cells[3]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
    for (const name of names) out.set(name, { type: cells[2]!.split(/\s/)[0]!, labels });
  }
  return out;
}

/** A finished request through an express middleware (the `finish` event is what it waits for). */
function finish(
  handler: (req: Request, res: Response, next: () => void) => void,
  req: object,
  res: { statusCode: number; headers?: Record<string, string> },
  before?: (res: Response) => void,
) {
  const r = Object.assign(new EventEmitter(), {
    statusCode: res.statusCode,
    locals: {},
    getHeader: (h: string) => res.headers?.[h],
  }) as unknown as Response;
  handler(req as Request, r, () => {});
  before?.(r);
  (r as unknown as EventEmitter).emit('finish');
}

/**
 * The registry as every role renders it, with each instrument observed once, against docs/metrics.md:
 * every documented name is served with its type and only documented labels, every served Vigil or
 * process name is documented, and the values are what was recorded.
 */
describe('metrics registry against docs/metrics.md', () => {
  let text: string;

  beforeAll(async () => {
    registerRole('test');
    setReady('test', true);
    const p = processorInstruments();
    p.recordsIn.add(3, { topic: 'eeg' });
    p.recordsOut.add(1, { topic: 'scores' });
    p.late.add(1);
    p.duplicates.add(1);
    p.dlq.add(1, { reason: 'ts_out_of_window' });
    p.transactions.add(1, { outcome: 'committed' });
    p.changelogBytes.add(512);
    p.emitLatency.record(0.25, { topic: 'scores' });
    p.restore.record(1.5);
    p.rebalances.add(1);
    p.lag.addCallback((r) => r.observe(7, { topic: 'eeg' }));
    p.sessions.addCallback((r) => r.observe(2));
    const pm = new ProjectionMetrics('projection.eeg');
    pm.applied([String(Date.now() - 2_000), String(Date.now() - 1_000)]);
    pm.batch('applied');
    pm.deadLettered(['data_error']);
    pm.lag('t.telemetry.eeg.v1', 0, 4);
    pm.lag('t.telemetry.eeg.v1', 1, 5);
    queueDepths.set('session-report', 6);
    jobFinished('session-report', 'completed');
    webhookPosted('delivered');
    finish(ingestMetrics, { params: { stream: 'eeg' }, body: [1, 2, 3] }, { statusCode: 400 }, (res) =>
      refused(res, 'ts_out_of_window'),
    );
    finish(
      requestMetrics,
      { method: 'GET', baseUrl: '/v1', route: { path: '/sessions/:id' } },
      { statusCode: 200, headers: { 'x-cache': 'hit' } },
    );
    finish(
      requestMetrics,
      { method: 'GET', baseUrl: '/v1', route: { path: '/sessions/:id' } },
      { statusCode: 503, headers: { 'x-cache': 'miss' } },
    );
    recordSseClients('live', 1);
    text = await metricsText();
  });

  it('serves every documented name with its type and documented labels only', () => {
    const served = types(text);
    const documented = contract();
    expect(documented.size).toBeGreaterThan(30);
    for (const [name, { type, labels }] of documented) {
      expect({ name, type: served.get(name) }).toEqual({ name, type });
      const keys = new Set(
        series(text, type === 'histogram' ? `${name}_count` : name).flatMap(([l]) => Object.keys(l)),
      );
      expect({ name, undocumented: [...keys].filter((k) => !labels.has(k)) }).toEqual({ name, undocumented: [] });
    }
  });

  it('documents every Vigil and process name it serves, and none ends in _total_total', () => {
    const documented = contract();
    const ours = [...types(text).keys()].filter((n) => /^(vigil|process|nodejs)_/.test(n));
    expect(ours.filter((n) => !documented.has(n))).toEqual([]);
    expect(ours.filter((n) => n.endsWith('_total_total'))).toEqual([]);
  });

  it('renders the recorded values in base units', () => {
    expect(sample(text, 'vigil_ready', { role: 'test' })).toBe(1);
    expect(sample(text, 'vigil_processor_records_in_total', { topic: 'eeg' })).toBe(3);
    expect(sample(text, 'vigil_processor_emit_latency_seconds_sum', { topic: 'scores' })).toBe(0.25);
    expect(sample(text, 'vigil_processor_restore_seconds_sum')).toBe(1.5);
    expect(sample(text, 'vigil_processor_lag_records', { topic: 'eeg' })).toBe(7);
    expect(sample(text, 'vigil_projection_lag_records', { projection: 'eeg' })).toBe(9);
    expect(sample(text, 'vigil_projection_records_applied_total', { projection: 'eeg' })).toBe(2);
    const fresh = sample(text, 'vigil_projection_freshness_seconds_sum', { projection: 'eeg' })!;
    expect(fresh).toBeGreaterThanOrEqual(3);
    expect(fresh).toBeLessThan(10);
    expect(sample(text, 'vigil_jobs_queue_depth', { queue: 'session-report' })).toBe(6);
    expect(
      sample(text, 'vigil_gateway_events_total', { stream: 'eeg', outcome: 'refused', reason: 'ts_out_of_window' }),
    ).toBe(3);
    expect(sample(text, 'vigil_api_errors_total', { route: '/v1/sessions/:id', status: '503' })).toBe(1);
    expect(sample(text, 'vigil_api_cache_hit_ratio', { cache: '/v1/sessions/:id' })).toBe(0.5);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
  });
});
