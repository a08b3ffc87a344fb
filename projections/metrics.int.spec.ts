import type { Server } from 'node:http';
import { eventually, testConfig } from '../test/support/env';
import { pipelineFixture, projectionRunner, type PipelineFixture } from '../test/support/pipeline';
import { sample, scrape } from '../test/support/metrics';
import { startMetricsServer } from '../core/metrics-server';
import { sessionEvents } from '../producers/simulator/session';
import type { EegBandPower, SessionEvent } from '../schemas/types';
import { eegModel } from './eeg/model';

/**
 * The projection metrics a `vigil project` serves (docs/metrics.md), scraped over HTTP from the metrics
 * server while a real projection runner consumes a real Kafka topic: every published record counted
 * as applied once, a freshness observation per record, and the lag gauge at 0 once it caught up.
 */
describe('projection metrics (real Kafka and PostgreSQL, scraped over HTTP)', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let server: Server;
  let url: string;
  const plan = { seed: 5, index: 0, tenantId: 'tenant-m', startTs: Date.UTC(2026, 0, 1, 8), durationMs: 10_000 };
  const events = [...sessionEvents({ ...plan, profile: 'drowsy' })];
  const eeg = events.filter((e) => e.topic === 'eeg').map((e) => e.event as EegBandPower);
  const sessions = events.filter((e) => e.topic === 'sessions').map((e) => e.event as SessionEvent);

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    ({ server, url } = await startMetricsServer('127.0.0.1', 0));
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await fx?.close();
  });

  it('counts every published record as applied once, records its freshness, and the lag reaches 0', async () => {
    await fx.publisher.publish('sessions', sessions);
    await fx.publisher.publish('eeg', eeg);
    const runner = projectionRunner(fx, eegModel, config.topicPrefix);
    await runner.start();
    try {
      const text = await eventually(
        () => scrape(url),
        (t) =>
          sample(t, 'vigil_projection_records_applied_total', { projection: 'eeg' }) === eeg.length &&
          sample(t, 'vigil_projection_lag_records', { projection: 'eeg' }) === 0,
      );
      expect(sample(text, 'vigil_projection_records_applied_total', { projection: 'eeg' })).toBe(eeg.length);
      expect(sample(text, 'vigil_projection_lag_records', { projection: 'eeg' })).toBe(0);
      expect(sample(text, 'vigil_projection_freshness_seconds_count', { projection: 'eeg' })).toBe(eeg.length);
      expect(sample(text, 'vigil_projection_freshness_seconds_sum', { projection: 'eeg' })).toBeGreaterThan(0);
      expect(sample(text, 'vigil_projection_batches_total', { projection: 'eeg', outcome: 'applied' })).toBeGreaterThan(
        0,
      );
      expect(sample(text, 'vigil_projection_dead_lettered_total', { projection: 'eeg' })).toBeUndefined();
      // The rows are there too: what the counter says was applied was written.
      const { rows } = await fx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM eeg_frames');
      expect(rows[0]!.n).toBe(eeg.length);
    } finally {
      await runner.stop();
    }
  });
});
