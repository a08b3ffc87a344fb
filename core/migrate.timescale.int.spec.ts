import type { Client } from 'pg';
import { migrate } from './migrate';
import { startTimescalePglite } from '../test/support/pglite';
import { testLogger } from '../test/support/env';

describe('vigil migrate on TimescaleDB (PGlite)', () => {
  let pg: { client: Client; stop: () => Promise<void> };

  beforeAll(async () => {
    pg = await startTimescalePglite();
  });
  afterAll(() => pg?.stop());

  it('creates the extension and makes the telemetry tables hypertables with 1-day chunks', async () => {
    await migrate({ database: pg.client, log: testLogger() });

    const on = await pg.client.query('SELECT vigil_timescale() AS on');
    expect(on.rows[0].on).toBe(true);
    const dims = await pg.client.query(
      `SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions ORDER BY 1`,
    );
    expect(dims.rows).toEqual([{ hypertable_name: 'eeg_frames', column_name: 'ts', time_interval: { days: 1 } }]);
  });

  it('accepts rows through the same idempotent insert as plain PostgreSQL', async () => {
    const insert = `INSERT INTO eeg_frames (event_id, ts, tenant_id, session_id, device_id, seq, channels)
      VALUES ('6f1c8a3e-1b2d-4c5e-8f90-123456789abc', '2026-01-01T00:00:00Z', 't', 's', 'd', 1, '[]')
      ON CONFLICT DO NOTHING`;
    const first = await pg.client.query(insert);
    const second = await pg.client.query(insert);
    expect([first.rowCount, second.rowCount]).toEqual([1, 0]);
  });
});
