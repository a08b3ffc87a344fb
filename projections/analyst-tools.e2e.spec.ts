import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Pool } from 'pg';
import { eventually, processEnv, testConfig } from '../test/support/env';
import { migratedDatabase, type MigratedDatabase } from '../test/support/database';
import { kafkaFixture, type KafkaFixture } from '../test/support/stack';
import { runVigil, startVigil, type VigilProcess } from '../test/support/processes';

/**
 * The analyst commands as processes (`dist/main.js`, npm test builds first) against the local stack:
 * simulated EEG projected by `vigil project`, then `vigil projections list`, `vigil projections rebuild
 * eeg` while the projection keeps running (same rows after), and `vigil replay export` to a CSV file
 * (the rows the projection holds for that event-time range).
 */
/**
 * Near now, whole minutes: input topics stamp the broker's append time (LogAppendTime), the trust
 * rules refuse a ts more than 24 h behind it, and the export finds its start offset by record time.
 */
const START = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
const FROM = new Date(START + 10_000).toISOString();

describe('vigil replay export and projections rebuild (processes)', () => {
  const config = testConfig();
  let kafka: KafkaFixture;
  let db: MigratedDatabase;
  let pool: Pool;
  let env: Record<string, string>;
  let project: VigilProcess | undefined;

  const checksum = async () =>
    (
      await pool.query<{ h: string }>(
        `SELECT count(*) || ':' || md5(string_agg((to_jsonb(t) - 'updated_at')::text, '|' ORDER BY event_id, ts)) AS h
         FROM eeg_frames t`,
      )
    ).rows[0]!.h;

  beforeAll(async () => {
    kafka = await kafkaFixture(config);
    db = await migratedDatabase({ poolMax: 2, ignoreIdleClientErrors: true });
    pool = db.pool;
    env = processEnv(config, { VIGIL_DATABASE_URL: db.url });
    await runVigil(
      ['simulate', '--sessions', '2', '--duration', '20s', '--speed', 'max', '--modalities', 'eeg'].concat([
        '--start',
        new Date(START).toISOString(),
      ]),
      env,
    );
    project = startVigil(['project', '--models', 'sessions,eeg'], env);
  }, 90_000);
  afterAll(async () => {
    project?.child.kill('SIGTERM');
    await project?.exited;
    await db?.close();
    await kafka?.close();
  });

  it('lists the positions, rebuilds eeg to the same rows while the projection runs, exports a range as CSV', async () => {
    const lagOf = async () => {
      const out = await runVigil(['projections', 'list'], env);
      return out.split('\n').find((l) => l.startsWith('eeg\t'));
    };
    const eegLine = await eventually(lagOf, (l) => !!l && l.endsWith('\t0'), 40_000);
    expect(eegLine).toBe(`eeg\t${config.topicPrefix}.telemetry.eeg.v1\t400\t400\t0`);
    const before = await checksum();

    // A hypertable (TimescaleDB path) is swapped by copy: its chunks and aggregate cannot move; a plain
    // table nothing depends on by rename.
    const { rows: which } = await pool.query<{ ts: boolean }>('SELECT vigil_timescale() AS ts');
    const swap = which[0]!.ts ? 'copy' : 'rename';
    const rebuilt = await runVigil(['projections', 'rebuild', 'eeg'], env);
    expect(rebuilt).toMatch(
      new RegExp(
        `rebuilt eeg: 400 events in \\d+\\.\\d s \\(\\d+ events/s\\), 0 undecodable, 0 refused \\(rule table, ts window, another tenant's session\\) and 0 with a data error skipped, as the live runner dead-lettered them; swapped eeg_frames by ${swap}, sessions by upsert`,
      ),
    );
    expect(await checksum()).toBe(before);

    const file = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-export-')), 'eeg.csv');
    const exported = await runVigil(
      ['replay', 'export', '--topic', 'eeg', '--from', FROM, '--format', 'csv', '--out', file],
      env,
    );
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM eeg_frames WHERE ts >= $1`, [
      FROM,
    ]);
    expect(rows[0]!.n).toBeGreaterThan(0);
    expect(exported).toMatch(new RegExp(`exported ${rows[0]!.n} events from \\d partitions`));
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines[0]).toBe('partition,offset,key,event_id,tenant_id,session_id,device_id,seq,ts,channels');
    expect(lines.length).toBe(rows[0]!.n + 1);
  });
});
