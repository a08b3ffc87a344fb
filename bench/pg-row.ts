import { Client } from 'pg';
import { prepared, type Statement } from '../core/db';
import { createLogger } from '../core/logger';
import { migrate } from '../core/migrate';
import { uuidFrom } from '../processors/fatigue/ids';
import { eegModel } from '../projections/eeg/model';
import { faceModel } from '../projections/face/model';
import type { ProjectedRecord, ReadModel } from '../projections/model';
import type { EegBandPower, FaceFrame } from '../schemas/types';
import { describeDatabase } from './database';
import { round, spread, table, writeResults, type Spread } from './lib';
import { migratedDatabase } from './pipeline';
import { CLK_TCK, cpuTicks } from './procstat';

/**
 * `npm run bench -- pg-row [--runs 3] [--batches 1500] [--batch 40] [--sessions 8]`: PostgreSQL's CPU
 * per telemetry row, the largest single cost of the pipeline (issue 13), for the two choices that set
 * it in the write path, measured apart from everything else:
 * - keys: the telemetry tables as migration 0012 keys them, (tenant_id, session_id, ts, event_id) and
 *   no other index, against the schema before it (0012 rolled back: (event_id, ts), a
 *   (session_id, ts DESC) index and, on TimescaleDB, the default ts index);
 * - statements: named (core/db.ts `prepared`, what the projection runner sends) or unnamed (parsed
 *   and planned on every batch).
 * Per variant and model (eeg: a jsonb column; face: scalars), on one connection: `--batches`
 * transactions, each the model's own statement (projections/<model>/model.ts: the multi-row insert
 * and its sessions upsert) over `--batch` rows of `--sessions` sessions (a partition's share) plus a
 * checkpoint upsert, as the runner commits a batch. Measured: the backend's CPU (from /proc, so the
 * server must run on this machine), this process's CPU and the wall time, per row; the variants
 * alternate within each run and every run starts from empty tables, so the spread shows the
 * machine's noise. Also the bytes of index per row of the keys' tables.
 */
interface Options {
  runs: number;
  batches: number;
  batch: number;
  sessions: number;
}

const USAGE = 'npm run bench -- pg-row [--runs 3] [--batches 1500] [--batch 40] [--sessions 8]';

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 3, batches: 1_500, batch: 40, sessions: 8 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const n = Number(argv[i + 1]);
    if (!['--runs', '--batches', '--batch', '--sessions'].includes(a))
      throw new Error(`unknown argument ${a}; usage: ${USAGE}`);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer; usage: ${USAGE}`);
    o[a.slice(2) as keyof Options] = n;
    i++;
  }
  return o;
}

type Keys = 'session-key' | 'before-0012';
type Mode = 'prepared' | 'unnamed';
const models: { model: ReadModel; table: string; event: (n: number, session: string, ts: number) => unknown }[] = [
  {
    model: eegModel,
    table: 'eeg_frames',
    event: (n, session, ts): EegBandPower => ({
      device_id: `${session}-eeg`,
      seq: n,
      channels: ['Fz', 'Cz', 'Pz', 'Oz'].map((channel, k) => ({
        channel,
        delta_uv2: 12.5 + k,
        theta_uv2: 6.25 + (n % 7),
        alpha_uv2: 9.75,
        beta_uv2: 3.5,
        gamma_uv2: 1.25,
        quality: 0.9,
      })),
      ...envelope(n, session, ts),
    }),
  },
  {
    model: faceModel,
    table: 'face_frames',
    event: (n, session, ts): FaceFrame => ({
      device_id: `${session}-cam`,
      seq: n,
      face_detected: true,
      eye_closure: (n % 10) / 10,
      mouth_open: 0.125,
      head_pitch_deg: -3.5,
      head_yaw_deg: 1.25,
      head_roll_deg: 0.5,
      ...envelope(n, session, ts),
    }),
  },
];

function envelope(n: number, session: string, ts: number) {
  return { event_id: uuidFrom('pg-row', session, String(n)), tenant_id: 'bench-fleet', session_id: session, ts };
}

const CHECKPOINT_SQL = `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, 0, $3)
ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`;

interface Measure {
  backend_cpu_us_per_row: number;
  client_cpu_us_per_row: number;
  wall_us_per_row: number;
}

async function measure(url: string, m: (typeof models)[number], mode: Mode, o: Options): Promise<Measure> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`TRUNCATE ${m.table}, sessions, projection_checkpoints`);
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const send = (s: Statement) => c.query(mode === 'prepared' ? prepared(s) : { text: s.text, values: s.values });
    const start = Date.parse('2026-12-07T08:00:00Z');
    const ticks0 = cpuTicks(pid) ?? NaN;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let b = 0; b < o.batches; b++) {
      // A partition's batch: `batch` rows spread over `sessions` sessions of this partition, 10 ms apart.
      const partition = b % 12;
      const records: ProjectedRecord[] = [];
      for (let i = 0; i < o.batch; i++) {
        const session = `bench-s${partition}-${i % o.sessions}`;
        const n = b * o.batch + i;
        records.push({
          topic: m.model.topics[0]!,
          partition,
          offset: String(n),
          value: m.event(n, session, start + n * 10),
        });
      }
      await c.query('BEGIN');
      for (const s of m.model.project(records)) await send(s);
      await send({ text: CHECKPOINT_SQL, values: [m.model.name, m.table, String((b + 1) * o.batch)] });
      await c.query('COMMIT');
    }
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const ticks = (cpuTicks(pid) ?? NaN) - ticks0;
    const rows = o.batches * o.batch;
    return {
      backend_cpu_us_per_row: round(((ticks / CLK_TCK) * 1e6) / rows),
      client_cpu_us_per_row: round((cpu.user + cpu.system) / rows),
      wall_us_per_row: round((wall * 1e3) / rows),
    };
  } finally {
    await c.end();
  }
}

/** Bytes of index per row of `table`: its own indexes and, on TimescaleDB, those of its chunks. */
async function indexBytesPerRow(url: string, table: string): Promise<number> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ bytes: string; n: string }>(
      `SELECT (pg_indexes_size($1::regclass) + CASE WHEN vigil_timescale()
                 THEN (SELECT coalesce(sum(pg_indexes_size(ch)), 0) FROM show_chunks($1::regclass) ch) ELSE 0 END)::text AS bytes,
              (SELECT count(*) FROM ${table})::text AS n`,
      [table],
    );
    return Math.round(Number(rows[0]!.bytes) / Number(rows[0]!.n));
  } finally {
    await c.end();
  }
}

export async function pgRowBench(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const log = createLogger({ level: 'silent', role: 'bench' });
  const dbs = {
    'session-key': await migratedDatabase('pgrow_key'),
    'before-0012': await migratedDatabase('pgrow_before'),
  } satisfies Record<Keys, { url: string; drop: () => Promise<void> }>;
  try {
    await migrate({ database: dbs['before-0012'].url, log, direction: 'down', count: 1 });
    const probe = new Client({ connectionString: dbs['session-key'].url });
    await probe.connect();
    const database = await describeDatabase(probe).finally(() => probe.end());
    const variants: [Keys, Mode][] = [
      ['before-0012', 'unnamed'],
      ['session-key', 'unnamed'],
      ['before-0012', 'prepared'],
      ['session-key', 'prepared'],
    ];
    const runs = new Map<string, Measure[]>();
    const indexBytes = new Map<string, number>();
    for (let r = 0; r < o.runs; r++)
      for (const m of models)
        for (const [keys, mode] of r % 2 ? [...variants].reverse() : variants) {
          const got = await measure(dbs[keys].url, m, mode, o);
          const id = `${m.model.name}|${keys}|${mode}`;
          runs.set(id, [...(runs.get(id) ?? []), got]);
          process.stdout.write(`[pg-row] run ${r + 1} ${id}: ${JSON.stringify(got)}\n`);
          if (mode === 'unnamed')
            indexBytes.set(`${m.model.name}|${keys}`, await indexBytesPerRow(dbs[keys].url, m.table));
        }
    const results = [...runs].map(([id, ms]) => {
      const [model, keys, mode] = id.split('|') as [string, Keys, Mode];
      const of = (f: keyof Measure): Spread => spread(ms.map((x) => x[f]));
      return {
        model,
        keys,
        mode,
        backend_cpu_us_per_row: of('backend_cpu_us_per_row'),
        client_cpu_us_per_row: of('client_cpu_us_per_row'),
        wall_us_per_row: of('wall_us_per_row'),
        index_bytes_per_row: indexBytes.get(`${model}|${keys}`) ?? null,
      };
    });
    const base = (model: string) =>
      results.find((x) => x.model === model && x.keys === 'before-0012' && x.mode === 'unnamed')!.backend_cpu_us_per_row
        .median;
    const fmt = (s: Spread) => `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})`;
    const markdown = [
      `Database: ${database.label}. ${o.runs} runs of ${o.batches} transactions x ${o.batch} rows over ${o.sessions} sessions each; median (min-max) per row.`,
      '',
      table(
        [
          'model',
          'keys',
          'statements',
          'backend CPU µs/row',
          'vs before-0012 unnamed',
          'client CPU µs/row',
          'wall µs/row',
          'index B/row',
        ],
        results.map((x) => [
          x.model,
          x.keys,
          x.mode,
          fmt(x.backend_cpu_us_per_row),
          (x.backend_cpu_us_per_row.median / base(x.model)).toFixed(2),
          fmt(x.client_cpu_us_per_row),
          fmt(x.wall_us_per_row),
          x.index_bytes_per_row ?? '-',
        ]),
      ),
    ].join('\n');
    writeResults('pg-row', { options: o, database: database.label, results }, markdown);
  } finally {
    await Promise.all(Object.values(dbs).map((d) => d.drop().catch(() => {})));
  }
}
