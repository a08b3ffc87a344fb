import path from 'node:path';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import { createApiKey } from '../../core/api-keys';
import { sessionEvents, sessionIdOf } from '../../producers/simulator/session';
import { Pipeline, sleep, type Role } from '../pipeline';
import { rssMiB } from '../procstat';
import { readToEnd } from '../../core/read-to-end';
import type { TopicKey } from '../../schemas/catalogue';
import {
  audit,
  drain,
  publishedCounts,
  referenceRun,
  tenantReference,
  withAcknowledged,
  type AuditReport,
} from './audit';
import { PrivateKafka, PrivatePostgres, PrivateRedis } from './services';
import { brokerKill } from './broker-kill';

/**
 * Failure drills: a pipeline of its own (processor, projection worker, API as `dist/main.js`
 * processes), real-time simulated load, a failure injected while the load runs, then drain and the
 * audit (audit.ts): zero lost and zero duplicated events is the pass mark. Every drill is bounded
 * in time. Drills that stop a service stop a private one (services.ts), never the shared stack's.
 */
export interface DrillOptions {
  /** Live simulated sessions. */
  sessions: number;
  /** Event-time length of each session (= wall seconds of load). */
  seconds: number;
  /** Partitions of every topic. */
  partitions: number;
  /** Seconds a stopped service stays down. */
  downSeconds: number;
  /** How long the pipeline may take to catch up after the load before the audit runs anyway. */
  drainTimeoutSeconds: number;
  /** The roles' VIGIL_LOG_LEVEL (default warn); their last 64 KiB of output is kept in `.local/drill/logs/`. */
  logLevel?: string;
}

export const shortDrill: DrillOptions = {
  sessions: 3,
  seconds: 10,
  partitions: 3,
  downSeconds: 3,
  drainTimeoutSeconds: 60,
};
export const defaultDrill: DrillOptions = {
  sessions: 20,
  seconds: 60,
  partitions: 12,
  downSeconds: 10,
  drainTimeoutSeconds: 120,
};

export interface DrillResult {
  drill: string;
  ok: boolean;
  options: DrillOptions;
  seconds: number;
  /** What was done when (seconds since the load started). */
  timeline: { t: number; what: string }[];
  observations: Record<string, unknown>;
  /** Roles that exited without being killed on purpose (restarted by the drill's supervisor). */
  crashes: { role: string; code: number; tail: string }[];
  simulator_exit_code: number;
  drain_ms: number;
  audit: AuditReport;
}

export interface Ctx {
  p: Pipeline;
  o: DrillOptions;
  t0: number;
  mark: (what: string) => void;
  /** Seconds since the load started. */
  at: () => number;
  observations: Record<string, unknown>;
  redis: Redis;
  sessionIds: string[];
  /** Authorization header of a reader key of the drill's tenant. */
  auth: Record<string, string>;
}

export interface DrillSpec {
  /** Private services and the options of the pipeline. */
  setup?: () => Promise<{
    redisUrl?: string;
    databaseServerUrl?: string;
    brokers?: string;
    cleanup: () => Promise<void>;
  }>;
  /** Load other than the simulator (the gateway flood); default: `vigil simulate` in real time. */
  noSimulator?: boolean;
  during: (c: Ctx) => Promise<void>;
  /** Extra pass conditions beyond the audit. */
  passes?: (c: Ctx) => boolean;
  /**
   * Audit this tenant's data only, against the pure Replay of its own input (audit.ts
   * tenantReference) instead of the reference processor over every input.
   */
  auditTenant?: string;
  /** More roles started after the processor and projection worker, supervised like them (name → args). */
  extraRoles?: Record<string, string[]>;
  /** After the audit, before the pipeline stops (reads what the drill checks beyond the audit). */
  after?: (c: Ctx) => Promise<void>;
}

const SEED = 7;

/** Restarts a worker role that crashed on its own (as an orchestrator would), after 1 s. */
function supervise(p: Pipeline, names: string[], stop: { done: boolean }): void {
  const watch = (r: Role) => {
    void r.exited.then(async () => {
      if (stop.done || r.killed) return;
      await sleep(1_000);
      if (!stop.done && p.roles.get(r.name) === r) watch(p.restart(r.name));
    });
  };
  for (const n of names) {
    const r = p.roles.get(n);
    if (r) watch(r);
  }
}

async function run(name: string, spec: DrillSpec, o: DrillOptions, log: (s: string) => void): Promise<DrillResult> {
  const started = performance.now();
  const services = spec.setup ? await spec.setup() : { cleanup: async () => {} };
  let p: Pipeline | undefined;
  const stop = { done: false };
  try {
    p = await Pipeline.create({ name: `drill-${name}`, partitions: o.partitions, logLevel: o.logLevel, ...services });
    const redis = new Redis(p.config.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: false });
    redis.on('error', () => {});
    const pool = new Pool({ connectionString: p.db.url, max: 1 });
    const reader = await createApiKey(pool, { tenantId: 'drill', role: 'reader', label: 'drill' });
    await pool.end();
    await p.startApi();
    await p.startWorkers();
    log(`${name}: pipeline up (${p.config.topicPrefix})`);
    const sessionIds = Array.from({ length: o.sessions }, (_, i) => sessionIdOf(SEED, i));
    const timeline: { t: number; what: string }[] = [];
    const ctx: Ctx = {
      p,
      o,
      t0: performance.now(),
      mark: (what) => {
        timeline.push({ t: ctx.at(), what });
        log(`${name} +${ctx.at()}s: ${what}`);
      },
      at: () => Math.round((performance.now() - ctx.t0) / 100) / 10,
      observations: {},
      redis,
      sessionIds,
      auth: { authorization: `Bearer ${reader.key}` },
    };
    for (const [role, args] of Object.entries(spec.extraRoles ?? {})) p.start(role, args);
    if (spec.extraRoles) await p.waitGroups([p.groups().processor]);
    supervise(p, ['processor', 'projector', 'api', ...Object.keys(spec.extraRoles ?? {})], stop);
    let simCode = 0;
    let sim: Role | undefined;
    if (!spec.noSimulator) {
      sim = p.start('simulate', [
        'simulate',
        '--sessions',
        String(o.sessions),
        '--duration',
        `${o.seconds}s`,
        '--speed',
        'realtime',
        '--seed',
        String(SEED),
        '--tenant',
        'drill',
      ]);
    }
    ctx.t0 = performance.now();
    await spec.during(ctx);
    if (sim) {
      simCode = await sim.exited;
      ctx.mark(`simulator exited ${simCode}`);
      if (simCode !== 0) ctx.observations.simulator_output = sim.output().slice(-2000);
    }
    let drainMs = -1;
    try {
      drainMs = await drain(p, {
        redis,
        timeoutMs: o.drainTimeoutSeconds * 1000,
        quietMs: o.seconds < 30 ? 2_000 : 3_000,
      });
      ctx.mark(`drained in ${drainMs} ms`);
    } catch (err) {
      // Audit anyway: what did not arrive shows as lost. Keep the workers' last words.
      ctx.mark(`not drained: ${err instanceof Error ? err.message : String(err)}`);
      for (const role of ['processor', 'projector']) {
        ctx.observations[`${role}_output_tail`] = p.roles.get(role)?.output().slice(-3000);
      }
    }
    stop.done = true;
    const reference =
      spec.auditTenant === undefined ? await referenceRun(p) : await tenantReference(p, spec.auditTenant);
    ctx.mark(
      `reference replay read ${reference.records_in} records${spec.auditTenant === undefined ? '' : ` of tenant ${spec.auditTenant}`}` +
        (reference.late_left_out ? `, left out the ${reference.late_left_out} the live run found late` : ''),
    );
    let report = await audit(p, { redis, reference, tenant: spec.auditTenant });
    if (sim && simCode === 0) {
      const published = publishedCounts(sim.output());
      if (!published) throw new Error('the simulator exited 0 without its closing "published ..." line');
      report = withAcknowledged(report, published);
    }
    ctx.mark(`audit: lost ${report.lost}, duplicated ${report.duplicated}`);
    if (spec.after) await spec.after(ctx);
    redis.disconnect();
    const extra = spec.passes ? spec.passes(ctx) : true;
    return {
      drill: name,
      ok: report.ok && extra && drainMs >= 0 && (spec.noSimulator || simCode === 0),
      options: o,
      seconds: Math.round((performance.now() - started) / 1000),
      timeline,
      observations: ctx.observations,
      crashes: p.crashes,
      simulator_exit_code: simCode,
      drain_ms: drainMs,
      audit: report,
    };
  } finally {
    stop.done = true;
    p?.keepOutputs(path.join('drill', 'logs', name));
    await p?.close();
    await services.cleanup();
  }
}

/** `GET path` on the API every `everyMs` until `until()`: status counts. */
async function probe(
  url: string,
  everyMs: number,
  until: () => boolean,
  headers: Record<string, string> = {},
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  while (!until()) {
    const status = await fetch(url, { headers, signal: AbortSignal.timeout(3_000) }).then(
      (r) => String(r.status),
      () => 'error',
    );
    counts[status] = (counts[status] ?? 0) + 1;
    await sleep(everyMs);
  }
  return counts;
}

async function waitStatus(url: string, want: number, timeoutMs: number): Promise<number | undefined> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    const s = await fetch(url, { signal: AbortSignal.timeout(3_000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (s === want) return Math.round(performance.now() - t0);
    await sleep(200);
  }
  return undefined;
}

/** ms until every one of `sessions` is owned by `tenant` (session_owners); throws after `timeoutMs`. */
async function untilOwned(pool: Pool, sessions: string[], tenant: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM session_owners WHERE session_id = ANY($1) AND tenant_id = $2',
      [sessions, tenant],
    );
    if (rows[0]!.n === sessions.length) return Math.round(performance.now() - t0);
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`${rows[0]!.n} of ${sessions.length} sessions owned by ${tenant} after ${timeoutMs} ms`);
    }
    await sleep(100);
  }
}

const third = (c: Ctx, k: number) => sleep(Math.max(0, (c.o.seconds * 1000 * k) / 3 - (performance.now() - c.t0)));

const drillSpecs: Record<string, DrillSpec> = {
  'kill-worker': {
    async during(c) {
      await third(c, 1);
      await c.p.kill('processor');
      c.mark('kill -9 processor');
      await sleep(1_000);
      c.p.restart('processor');
      c.mark('processor restarted');
      await third(c, 2);
      await c.p.kill('projector');
      c.mark('kill -9 projection worker');
      await sleep(1_000);
      c.p.restart('projector');
      c.mark('projection worker restarted');
    },
  },

  poison: {
    async during(c) {
      await third(c, 1);
      const producer = c.p.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const key = (i: number) => c.sessionIds[i % c.sessionIds.length]!;
      const n = 30;
      const garbage = Array.from({ length: n }, (_, i) => ({
        key: key(i),
        value: i % 2 ? Buffer.from(JSON.stringify({ not: 'avro', i })) : Buffer.from([0xff, 0x13, 0x37, i]),
      }));
      // Magic byte 0 and a schema id no registry holds.
      const unknownId = Array.from({ length: n }, (_, i) => {
        const b = Buffer.alloc(12);
        b.writeUInt8(0, 0);
        b.writeUInt32BE(0x7ffffff0, 1);
        b.writeUInt32BE(i, 5);
        return { key: key(i), value: b };
      });
      await producer.send({ topic: c.p.topics.eeg, acks: -1, messages: garbage });
      await producer.send({ topic: c.p.topics.face, acks: -1, messages: unknownId });
      await producer.send({ topic: c.p.topics.sessions, acks: -1, messages: garbage.slice(0, 6) });
      await producer.disconnect();
      c.mark(`${n} non-Avro records to eeg, ${n} unknown-schema-id records to face, 6 non-Avro to sessions`);
      const before = await eegRows(c);
      await sleep(Math.min(5_000, (c.o.seconds * 1000) / 4));
      const after = await eegRows(c);
      c.observations.eeg_rows_after_burst = { before, after };
      c.mark(`eeg rows ${before} → ${after} after the burst (still flowing)`);
    },
    passes: (c) => {
      const r = c.observations.eeg_rows_after_burst as { before: number; after: number };
      return r.after > r.before;
    },
  },

  'redis-restart': {
    setup: async () => {
      const r = await PrivateRedis.start();
      redisRef.current = r;
      return { redisUrl: r.url, cleanup: () => r.down() };
    },
    async during(c) {
      const r = redisRef.current!;
      await third(c, 1);
      await r.down();
      c.mark('redis killed (no persistence: every key gone)');
      const until = performance.now() + c.o.downSeconds * 1000;
      const [session, ready] = await Promise.all([
        probe(`${c.p.apiUrl}/v1/sessions/${c.sessionIds[0]}`, 250, () => performance.now() > until, c.auth),
        probe(`${c.p.apiUrl}/health/ready`, 500, () => performance.now() > until),
      ]);
      c.observations.api_while_redis_down = { 'GET /v1/sessions/:id': session, 'GET /health/ready': ready };
      await r.up();
      c.mark(`redis back, empty; API answered ${JSON.stringify(session)} meanwhile`);
      // Rebuild: the Redis read model's checkpoint lived in Redis, so it is gone with the state. Stop
      // the projection worker, clear what was written since the restart, start it: the Redis model
      // replays its topics from offset 0 (the PostgreSQL models resume from their own checkpoints).
      await c.p.kill('projector', 'SIGTERM');
      const keys = await scanKeys(c.redis, `${c.p.config.topicPrefix}:*`);
      if (keys.length) await c.redis.del(...keys);
      c.p.restart('projector');
      c.mark(`projection worker restarted to rebuild Redis (${keys.length} keys written since the restart cleared)`);
    },
    passes: (c) => {
      const s = (c.observations.api_while_redis_down as Record<string, Record<string, number>>)[
        'GET /v1/sessions/:id'
      ]!;
      return Object.keys(s).every((k) => k === '200');
    },
  },

  'postgres-restart': {
    setup: async () => {
      const pg = await PrivatePostgres.start();
      return { databaseServerUrl: pg.url, cleanup: () => pg.remove(), pg };
    },
    async during(c) {
      const pg = pgRef.current!;
      await third(c, 1);
      await pg.down();
      c.mark('postgres stopped (immediate)');
      const red = await waitStatus(`${c.p.apiUrl}/health/ready`, 503, 10_000);
      c.mark(red === undefined ? 'readiness never went red' : `readiness red after ${red} ms`);
      const left = c.o.downSeconds * 1000 - (red ?? 0);
      if (left > 0) await sleep(left);
      await pg.up();
      c.mark('postgres started');
      const green = await waitStatus(`${c.p.apiUrl}/health/ready`, 200, 30_000);
      c.mark(green === undefined ? 'readiness not green within 30 s' : `readiness green after ${green} ms`);
      c.observations.readiness = { red_after_ms: red ?? null, green_after_ms: green ?? null };
    },
    passes: (c) => {
      const r = c.observations.readiness as { red_after_ms: number | null; green_after_ms: number | null };
      return r.red_after_ms !== null && r.green_after_ms !== null;
    },
  },

  'kafka-restart': {
    setup: async () => {
      const k = await PrivateKafka.start();
      kafkaRef.current = k;
      return { brokers: k.brokers, cleanup: () => k.remove() };
    },
    async during(c) {
      const k = kafkaRef.current!;
      await third(c, 1);
      k.stack('down');
      c.mark('broker stopped (stack.sh down)');
      await sleep(c.o.downSeconds * 1000);
      k.stack('up');
      c.mark('broker started (stack.sh up)');
    },
  },

  'broker-kill': brokerKill,

  'gateway-flood': {
    noSimulator: true,
    async during(c) {
      const rate = 1_000;
      const perRequest = 100;
      await c.p.startGateway({
        VIGIL_GATEWAY_RATE_PER_SEC: String(rate),
        VIGIL_GATEWAY_MAX_EVENTS: String(perRequest),
      });
      const pool = new Pool({ connectionString: c.p.db.url, max: 1 });
      const { key } = await createApiKey(pool, { tenantId: 'drill', role: 'device', label: 'gateway flood' });
      await pool.end();
      const gw = c.p.roles.get('gateway')!;
      const rssBefore = rssMiB(gw.pid) ?? 0;
      // Unique events: one long simulated EEG stream per session, each request takes the next 100.
      const startTs = Math.floor(Date.now() / 1000) * 1000;
      const gens = c.sessionIds.map((_, i) =>
        sessionEvents({
          seed: SEED,
          index: i,
          tenantId: 'drill',
          startTs,
          // Generators are lazy: a day of frames costs nothing until taken. Refused requests take
          // their 100 events too, so a short drill's few sessions must not run dry mid-flood.
          durationMs: 24 * 3_600_000,
          profile: 'alert',
          modalities: ['eeg'],
        }),
      );
      let g = 0;
      const exhausted = new Set<number>();
      /** The next request's body, or undefined once every stream ran dry (the flood then stops). */
      const nextBody = (): string | undefined => {
        const events: unknown[] = [];
        while (events.length < perRequest) {
          if (exhausted.size === gens.length) return undefined;
          const i = g++ % gens.length;
          const r = gens[i]!.next();
          if (r.done) exhausted.add(i);
          else if (r.value.topic === 'eeg') events.push(r.value.event);
        }
        return JSON.stringify(events);
      };
      const status: Record<string, number> = {};
      const rss: number[] = [];
      const until = performance.now() + c.o.seconds * 1000;
      const sampler = setInterval(() => rss.push(rssMiB(gw.pid) ?? 0), 500);
      const worker = async () => {
        while (performance.now() < until) {
          const body = nextBody();
          if (body === undefined) break;
          const s = await fetch(`${c.p.gatewayUrl}/v1/ingest/eeg`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
            body,
            signal: AbortSignal.timeout(10_000),
          }).then(
            async (r) => {
              await r.arrayBuffer();
              return String(r.status);
            },
            () => 'error',
          );
          status[s] = (status[s] ?? 0) + 1;
        }
      };
      c.mark(`flooding the gateway (limit ${rate} events/s per key, ${perRequest} events a request, 32 connections)`);
      await Promise.all(Array.from({ length: 32 }, worker));
      clearInterval(sampler);
      const accepted = (status['202'] ?? 0) * perRequest;
      c.observations.gateway_flood = {
        responses: status,
        events_accepted: accepted,
        accepted_events_per_s: Math.round(accepted / c.o.seconds),
        rate_limit_events_per_s: rate,
        gateway_rss_mib: { before: rssBefore, max: Math.max(rssBefore, ...rss), last: rss.at(-1) ?? rssBefore },
      };
      c.mark(`flood done: ${JSON.stringify(status)}`);
      await sleep(1_000);
    },
    passes: (c) => {
      const f = c.observations.gateway_flood as {
        responses: Record<string, number>;
        gateway_rss_mib: { before: number; max: number };
      };
      // Bounded: the flood may not grow the gateway by more than 200 MiB.
      return (f.responses['429'] ?? 0) > 0 && f.gateway_rss_mib.max - f.gateway_rss_mib.before < 200;
    },
  },

  trust: {
    auditTenant: 'drill',
    async during(c) {
      await c.p.startGateway({ VIGIL_GATEWAY_RATE_PER_SEC: '100000' });
      // The report job (jobs/): its trigger group starts at the end of the topics, so now.
      c.p.start('jobs', ['jobs']);
      const pool = new Pool({ connectionString: c.p.db.url, max: 1 });
      let key: string;
      let ownedMs: number;
      try {
        ({ key } = await createApiKey(pool, { tenantId: INTRUDER, role: 'device', label: 'trust drill' }));
        // A third in, and not before A's sessions are owned (claimed by the first batch naming them).
        // On a loaded machine the simulator may not have sent anything by then (a CI run): B's
        // records of a session nobody owned yet made B its owner, and A's records of it were refused.
        await third(c, 1);
        ownedMs = await untilOwned(pool, c.sessionIds, 'drill', 60_000);
      } finally {
        await pool.end();
      }
      c.mark(`A's ${c.sessionIds.length} sessions owned, ${ownedMs} ms after the third`);
      const now = Date.now();
      let nextIndex = 0;
      /** 4 s of tenant B's frames of one stream, from a fresh simulated session of B. */
      const frames = <T extends 'face' | 'vehicle' | 'sessions'>(topic: T) =>
        [
          ...sessionEvents({
            seed: INTRUDER_SEED,
            index: nextIndex++,
            tenantId: INTRUDER,
            startTs: now,
            durationMs: 4_000,
            profile: 'severe',
            modalities: [topic === 'vehicle' ? 'vehicle' : 'face'],
          }),
        ]
          .filter((e) => e.topic === topic)
          .map((e) => ({ ...(e.event as unknown as Record<string, unknown>) })) as (Record<string, unknown> & {
          session_id: string;
          event_id: string;
          ts: number;
        })[];
      const closedEyes = (sid: string) => frames('face').map((f) => ({ ...f, session_id: sid, eye_closure: 1 }));
      const year = 365 * 24 * 3_600_000;
      const hostile: { what: string; stream: 'face' | 'vehicle'; events: Record<string, unknown>[]; want: number }[] = [
        ...c.sessionIds.map((sid) => ({
          what: 'cross_tenant',
          stream: 'face' as const,
          events: closedEyes(sid),
          want: 403,
        })),
        {
          what: 'ts_year_ahead',
          stream: 'face',
          events: frames('face').map((f) => ({ ...f, ts: f.ts + year })),
          want: 400,
        },
        {
          what: 'ts_year_behind',
          stream: 'face',
          events: frames('face').map((f) => ({ ...f, ts: f.ts - year })),
          want: 400,
        },
        {
          what: 'eye_closure_5',
          stream: 'face',
          events: frames('face').map((f) => ({ ...f, eye_closure: 5 })),
          want: 400,
        },
        {
          what: 'lane_offset_1e308',
          stream: 'vehicle',
          events: frames('vehicle').map((f) => ({ ...f, lane_offset_m: 1e308 })),
          want: 400,
        },
        {
          what: 'device_id_nul',
          stream: 'face',
          events: frames('face').map((f) => ({ ...f, device_id: 'cam-\u0000' })),
          want: 400,
        },
        { what: 'ts_8.7e15', stream: 'face', events: frames('face').map((f) => ({ ...f, ts: 8.7e15 })), want: 400 },
      ];
      const gateway: Record<string, Record<string, number>> = {};
      const problems: Record<string, unknown> = {};
      for (const h of hostile) {
        const r = await fetch(`${c.p.gatewayUrl}/v1/ingest/${h.stream}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify(h.events),
          signal: AbortSignal.timeout(10_000),
        }).then(
          async (x) => ({ status: String(x.status), body: await x.text() }),
          (err: unknown) => ({ status: 'error', body: String(err) }),
        );
        const g = (gateway[h.what] ??= {});
        g[r.status] = (g[r.status] ?? 0) + 1;
        if (r.status !== String(h.want)) problems[h.what] = r.body.slice(0, 500);
      }
      c.observations.gateway_responses = gateway;
      c.observations.gateway_expected = Object.fromEntries(hostile.map((h) => [h.what, h.want]));
      if (Object.keys(problems).length) c.observations.gateway_unexpected_bodies = problems;
      c.mark(`hostile requests to the gateway: ${JSON.stringify(gateway)}`);

      // Straight to Kafka: the raw serde checks only the Avro schema.
      const producer = c.p.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const sent: Record<string, number> = {};
      const send = async (what: string, topic: TopicKey, events: Record<string, unknown>[]) => {
        for (const e of events) trustCategories.set(String(e.event_id), what);
        await producer.send({
          topic: c.p.topics[topic],
          acks: -1,
          messages: events.map((e) => ({
            key: String(e.session_id),
            value: c.p.serde.encode(topic, e as never),
          })),
        });
        sent[what] = (sent[what] ?? 0) + events.length;
      };
      for (const sid of c.sessionIds) {
        await send('cross_tenant', 'face', closedEyes(sid));
        // B ends A's session: must not end it (nor clear its alerts).
        const end = frames('sessions').filter((e) => (e.event as { type: string }).type === 'SessionEnded');
        await send(
          'cross_tenant',
          'sessions',
          end.map((e) => ({ ...e, session_id: sid })),
        );
      }
      await send(
        'ts_year_ahead',
        'face',
        frames('face').map((f) => ({ ...f, ts: f.ts + year })),
      );
      await send(
        'ts_year_behind',
        'face',
        frames('face').map((f) => ({ ...f, ts: f.ts - year })),
      );
      await send(
        'eye_closure_5',
        'face',
        frames('face').map((f) => ({ ...f, eye_closure: 5 })),
      );
      await send(
        'device_id_nul',
        'face',
        frames('face').map((f) => ({ ...f, device_id: 'cam-\u0000' })),
      );
      await send(
        'ts_8.7e15',
        'face',
        frames('face').map((f) => ({ ...f, ts: 8.7e15 })),
      );
      await producer.disconnect();
      c.observations.kafka_sent = sent;
      c.mark(`hostile records straight to Kafka: ${JSON.stringify(sent)}`);
    },
    async after(c) {
      const p = c.p;
      // (c) every dead letter by consumer and reason, and by what the drill sent.
      const dlq = await readToEnd(p.kafka, p.topics.dlq, { timeoutMs: 60_000 });
      const byConsumer: Record<string, Record<string, number>> = {};
      const byCategory: Record<string, Record<string, number>> = {};
      for (const r of dlq) {
        const h = (n: string) => (r.headers[n] === undefined ? 'none' : String(r.headers[n]));
        const consumer = h('vigil.dlq.consumer').replace(`${p.config.topicPrefix}.`, '');
        const reason = h('vigil.dlq.reason');
        const bc = (byConsumer[consumer] ??= {});
        bc[reason] = (bc[reason] ?? 0) + 1;
        const id = await p.serde.decode<{ event_id?: string; tenant_id?: string }>(r.value).then(
          (d) => d.value,
          () => undefined,
        );
        const what = (id?.event_id && trustCategories.get(id.event_id)) ?? `other (tenant ${id?.tenant_id ?? '?'})`;
        const cat = (byCategory[what] ??= {});
        cat[`${consumer}/${reason}`] = (cat[`${consumer}/${reason}`] ?? 0) + 1;
      }
      c.observations.dlq_by_consumer = byConsumer;
      c.observations.dlq_by_sent_category = byCategory;
      c.mark(`dead letters: ${dlq.length}`);

      // A's alerts: none cleared `session_ended` before A's own SessionEnded.
      const decodeAll = async (key: TopicKey) => {
        const out: { tenant_id: string; session_id: string; ts: number; event: Record<string, unknown> }[] = [];
        for (const r of await readToEnd(p.kafka, p.topics[key], { timeoutMs: 60_000 })) {
          try {
            out.push((await p.serde.decode<(typeof out)[number]>(r.value)).value);
          } catch {
            // poison: not A's
          }
        }
        return out.filter((e) => e.tenant_id === 'drill');
      };
      const endedAt = new Map<string, number>();
      for (const e of await decodeAll('sessions')) if (e.event.type === 'SessionEnded') endedAt.set(e.session_id, e.ts);
      const alerts = await decodeAll('alerts');
      const early = alerts.filter(
        (a) =>
          a.event.type === 'AlertCleared' &&
          a.event.reason === 'session_ended' &&
          a.ts < (endedAt.get(a.session_id) ?? Infinity),
      );
      const raised = new Map<string, number>();
      for (const a of alerts)
        if (a.event.type === 'AlertRaised') raised.set(a.session_id, (raised.get(a.session_id) ?? 0) + 1);
      c.observations.a_alerts = {
        events: alerts.length,
        raised: [...raised.values()].reduce((n, x) => n + x, 0),
        cleared_session_ended_early: early.length,
        escalations: alerts.filter((a) => a.event.type === 'AlertEscalated').length,
      };

      // What the read models hold per tenant (B's records the projections accepted show here).
      const pg = new Pool({ connectionString: p.db.url, max: 1 });
      try {
        const rows: Record<string, Record<string, number>> = {};
        for (const t of ['face_frames', 'vehicle_frames', 'sessions', 'alerts']) {
          const { rows: r } = await pg.query<{ tenant_id: string; n: string }>(
            `SELECT tenant_id, count(*)::text AS n FROM ${t} GROUP BY tenant_id`,
          );
          rows[t] = Object.fromEntries(r.map((x) => [x.tenant_id, Number(x.n)]));
        }
        c.observations.read_model_rows_by_tenant = rows;
        // (d) A's session reports (the jobs role): one per ended session, its alert count as A's topic says.
        const deadline = Date.now() + 20_000;
        let reports: { session_id: string; alert_count: number; level_max: number | null }[] = [];
        for (;;) {
          reports = (
            await pg.query<{ session_id: string; alert_count: number; level_max: number | null }>(
              "SELECT session_id, alert_count, level_max FROM session_reports WHERE tenant_id = 'drill'",
            )
          ).rows;
          if (reports.length >= endedAt.size || Date.now() > deadline) break;
          await sleep(1_000);
        }
        c.observations.a_reports = {
          ended_sessions: endedAt.size,
          reports: reports.length,
          alert_count_differs_from_topic: reports.filter((r) => r.alert_count !== (raised.get(r.session_id) ?? 0))
            .length,
        };
      } finally {
        await pg.end();
      }
    },
    passes: (c) => {
      const gw = c.observations.gateway_responses as Record<string, Record<string, number>>;
      const want = c.observations.gateway_expected as Record<string, number>;
      const gatewayOk = Object.entries(gw).every(([what, counts]) =>
        Object.keys(counts).every((s) => s === String(want[what])),
      );
      const proc =
        (c.observations.dlq_by_consumer as Record<string, Record<string, number>>)['processor.fatigue'] ?? {};
      const dlqOk = ['tenant_mismatch', 'rule_violation', 'ts_out_of_window'].every((r) => (proc[r] ?? 0) > 0);
      const a = c.observations.a_alerts as { cleared_session_ended_early: number };
      return gatewayOk && dlqOk && a.cleared_session_ended_early === 0;
    },
  },
};

/** The trust drill's hostile tenant, and what each of its records was sent as (by event id). */
const INTRUDER = 'intruder';
const INTRUDER_SEED = 1_011;
const trustCategories = new Map<string, string>();

const redisRef: { current?: PrivateRedis } = {};
const pgRef: { current?: PrivatePostgres } = {};
const kafkaRef: { current?: PrivateKafka } = {};
// The postgres drill's setup keeps its server for `during`.
const pgSetup = drillSpecs['postgres-restart']!.setup!;
drillSpecs['postgres-restart']!.setup = async () => {
  const s = (await pgSetup()) as Awaited<ReturnType<typeof pgSetup>> & { pg?: PrivatePostgres };
  pgRef.current = s.pg;
  return s;
};

async function eegRows(c: Ctx): Promise<number> {
  const pool = new Pool({ connectionString: c.p.db.url, max: 1 });
  try {
    return Number((await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM eeg_frames')).rows[0]!.n);
  } finally {
    await pool.end();
  }
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    out.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return out;
}

export const drillNames = Object.keys(drillSpecs);

export async function runDrill(
  name: string,
  o: DrillOptions = defaultDrill,
  log: (s: string) => void = () => {},
): Promise<DrillResult> {
  const spec = drillSpecs[name];
  if (!spec) throw new Error(`unknown drill ${name}; drills: ${drillNames.join(', ')}`);
  return run(name, spec, o, log);
}
