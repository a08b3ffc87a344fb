import type { Redis } from 'ioredis';
import { Client } from 'pg';
import { createLogger } from '../../core/logger';
import { ensureTopics } from '../../core/kafka';
import { readToEnd, type ReadRecord } from '../../core/read-to-end';
import { AvroSerde } from '../../core/serde';
import { loadConfig } from '../../core/config';
import { ProcessorRunner } from '../../processors/runner';
import { fatigueProcessor } from '../../processors/fatigue/keyed-processor';
import { Replay, type ReplayRecord } from '../../processors/rescore/replay';
import { recordRefusal } from '../../schemas/rules';
import { readModels } from '../../projections/index';
import { redisTopics } from '../../projections/redis/model';
import { redisKeys } from '../../core/redis-keys';
import { topicKeys, topicNames, type TopicKey } from '../../schemas/catalogue';
import { topicPlan } from '../../schemas/topics';
import type { Pipeline } from '../pipeline';
import { sleep } from '../pipeline';

/**
 * The audit that ends every drill: every event in the input topics counted against what every
 * projection and output topic holds.
 *
 * - Inputs (`sessions`, `eeg`, `face`, `vehicle`, `game`): decoded from offset 0 (read_committed);
 *   undecodable records are the poison set. Telemetry identity is `event_id`.
 * - PostgreSQL: each table's event ids against its topic's (lost = in the topic, not the table;
 *   duplicated = the table holds more rows than distinct events, or ids no topic holds); the
 *   `sessions` row's counters per session against the topic's distinct events of that session (a
 *   batch applied twice would count twice); `alerts` against the distinct alert ids.
 * - Output topics (`scores`, `alerts`): no event id twice (exactly-once), and, when a reference run
 *   is given, the same event ids as an undisturbed processor replaying the same inputs from offset 0
 *   into topics of its own (lost = the reference has it, the live topic does not).
 * - Redis: each session's `latest` hash holds the newest score of the topic, and `ended_at` once
 *   the session ended.
 * - DLQ: every poison record dead-lettered by the processor and by each projection that reads its
 *   topic, with the source headers; nothing else in the DLQ.
 */
export interface AuditCheck {
  name: string;
  expected: number;
  actual: number;
  lost: number;
  duplicated: number;
  ok: boolean;
  note?: string;
}

export interface AuditReport {
  ok: boolean;
  lost: number;
  duplicated: number;
  input_events: Record<string, number>;
  /** Same event id more than once in an input topic (producer retries): reported, not a pipeline fault. */
  input_duplicates: Record<string, number>;
  poison_records: number;
  checks: AuditCheck[];
}

interface Decoded {
  record: ReadRecord;
  value: { event_id: string; session_id: string; ts: number; tenant_id: string } & Record<string, unknown>;
}

const inputKeys = ['sessions', 'eeg', 'face', 'vehicle', 'game'] as const;
const tables: Record<string, { table: string; counter?: string }> = {
  eeg: { table: 'eeg_frames', counter: 'eeg_frame_count' },
  face: { table: 'face_frames', counter: 'face_frame_count' },
  vehicle: { table: 'vehicle_frames', counter: 'vehicle_frame_count' },
  game: { table: 'game_events', counter: 'game_event_count' },
  scores: { table: 'fatigue_scores', counter: 'score_count' },
  alerts: { table: 'alert_events' },
};

async function readDecoded(p: Pipeline, key: TopicKey): Promise<{ ok: Decoded[]; poison: ReadRecord[] }> {
  const records = await readToEnd(p.kafka, p.topics[key], { timeoutMs: 120_000 });
  const ok: Decoded[] = [];
  const poison: ReadRecord[] = [];
  for (const record of records) {
    try {
      const { value } = await p.serde.decode<Decoded['value']>(record.value);
      ok.push({ record, value });
    } catch {
      poison.push(record);
    }
  }
  return { ok, poison };
}

const check = (name: string, expected: number, actual: number, lost: number, duplicated: number, note?: string) => ({
  name,
  expected,
  actual,
  lost,
  duplicated,
  ok: lost === 0 && duplicated === 0,
  ...(note ? { note } : {}),
});

/**
 * The input topics against what the load generator was told was written (`vigil simulate`'s closing
 * `published ... {counts}` line: events acknowledged with acks=all). The audit proper starts from the
 * topics, so an acknowledged event the cluster does not hold would escape it; this check names it.
 * Fewer distinct events than acknowledged is loss; more is an event nobody acknowledged.
 */
export function withAcknowledged(report: AuditReport, published: Record<string, number>): AuditReport {
  const checks = [...report.checks];
  for (const [key, expected] of Object.entries(published)) {
    if (expected === 0 && !(key in report.input_events)) continue;
    const actual = report.input_events[key] ?? 0;
    checks.push(
      check(
        `topic ${key} vs events the simulator had acknowledged`,
        expected,
        actual,
        Math.max(0, expected - actual),
        Math.max(0, actual - expected),
        actual > expected ? `${actual - expected} distinct events more than acknowledged` : undefined,
      ),
    );
  }
  const sum = totals(checks);
  return { ...report, checks, ...sum, ok: report.ok && sum.ok };
}

/** Lost and duplicated over all checks; ok when both are 0. */
function totals(checks: readonly AuditCheck[]): { ok: boolean; lost: number; duplicated: number } {
  const lost = checks.reduce((n, c) => n + c.lost, 0);
  const duplicated = checks.reduce((n, c) => n + c.duplicated, 0);
  return { ok: lost === 0 && duplicated === 0, lost, duplicated };
}

/** The per-topic counts of `vigil simulate`'s closing line, or undefined when it did not print one. */
export function publishedCounts(simulatorOutput: string): Record<string, number> | undefined {
  const m = /^published \d+ events in [^:]*: (\{.*\})$/m.exec(simulatorOutput);
  return m ? (JSON.parse(m[1]!) as Record<string, number>) : undefined;
}

/**
 * `o.tenant`: audit that tenant's data only (the trust drill: another tenant's refused records are
 * counted by the drill, not here): inputs, outputs, rows and Redis keys of that tenant, and dead
 * letters of that tenant's records (any is a fault: its records are all good).
 */
export async function audit(
  p: Pipeline,
  o: { redis?: Redis; reference?: ReferenceRun; tenant?: string } = {},
): Promise<AuditReport> {
  const checks: AuditCheck[] = [];
  const inputEvents: Record<string, number> = {};
  const inputDuplicates: Record<string, number> = {};
  const poison: { topic: TopicKey; record: ReadRecord }[] = [];
  const ids: Record<string, Set<string>> = {};
  /** Per topic, per session: distinct event ids. */
  const perSession: Record<string, Map<string, number>> = {};
  const decoded: Partial<Record<TopicKey, Decoded[]>> = {};

  for (const key of [...inputKeys, 'scores', 'alerts'] as const) {
    const r = await readDecoded(p, key);
    if (o.tenant !== undefined) r.ok = r.ok.filter((d) => d.value.tenant_id === o.tenant);
    decoded[key] = r.ok;
    for (const record of r.poison) poison.push({ topic: key, record });
    const set = new Set<string>();
    const bySession = new Map<string, number>();
    let dups = 0;
    for (const d of r.ok) {
      if (set.has(d.value.event_id)) {
        dups++;
        continue;
      }
      set.add(d.value.event_id);
      bySession.set(d.value.session_id, (bySession.get(d.value.session_id) ?? 0) + 1);
    }
    ids[key] = set;
    perSession[key] = bySession;
    if (key === 'scores' || key === 'alerts') {
      checks.push(check(`topic ${key}: each event once`, set.size, r.ok.length, 0, dups));
    } else {
      inputEvents[key] = set.size;
      inputDuplicates[key] = dups;
    }
  }

  const pg = new Client({ connectionString: p.db.url });
  await pg.connect();
  const where = o.tenant === undefined ? '' : ' WHERE tenant_id = $1';
  const args = o.tenant === undefined ? [] : [o.tenant];
  try {
    for (const [key, { table }] of Object.entries(tables)) {
      const { rows } = await pg.query<{ id: string }>(`SELECT event_id::text AS id FROM ${table}${where}`, args);
      const want = ids[key]!;
      const have = new Set(rows.map((r) => r.id));
      let lost = 0;
      for (const id of want) if (!have.has(id)) lost++;
      let unknown = 0;
      for (const id of have) if (!want.has(id)) unknown++;
      checks.push(
        check(`postgres ${table} vs topic ${key}`, want.size, rows.length, lost, rows.length - have.size + unknown),
      );
    }

    // Session counters: a batch applied twice (or skipped) shows as a counter off by its size.
    const counters = Object.values(tables)
      .map((t) => t.counter)
      .filter(Boolean);
    const { rows: sessions } = await pg.query<Record<string, string | null>>(
      `SELECT session_id, status, ${counters.join(', ')} FROM sessions${where}`,
      args,
    );
    const sessionIds = new Set((decoded.sessions ?? []).map((d) => d.value.session_id));
    const ended = new Set(
      (decoded.sessions ?? [])
        .filter((d) => (d.value.event as { type?: string } | undefined)?.type === 'SessionEnded')
        .map((d) => d.value.session_id),
    );
    checks.push(
      check(
        'postgres sessions rows vs sessions in topic',
        sessionIds.size,
        sessions.filter((s) => sessionIds.has(s.session_id!)).length,
        [...sessionIds].filter((id) => !sessions.some((s) => s.session_id === id)).length,
        0,
      ),
    );
    checks.push(
      check(
        'postgres sessions ended vs SessionEnded in topic',
        ended.size,
        sessions.filter((s) => s.status === 'ended').length,
        [...ended].filter((id) => !sessions.some((s) => s.session_id === id && s.status === 'ended')).length,
        sessions.filter((s) => s.status === 'ended' && !ended.has(s.session_id!)).length,
      ),
    );
    for (const [key, { counter }] of Object.entries(tables)) {
      if (!counter) continue;
      let lost = 0;
      let dup = 0;
      let sum = 0;
      let expected = 0;
      const byId = new Map(sessions.map((s) => [s.session_id!, Number(s[counter] ?? 0)]));
      for (const [sid, n] of perSession[key]!) {
        const have = byId.get(sid) ?? 0;
        expected += n;
        sum += have;
        if (have < n) lost += n - have;
        if (have > n) dup += have - n;
      }
      checks.push(check(`postgres sessions.${counter} vs topic ${key} per session`, expected, sum, lost, dup));
    }

    const alertIds = new Set(
      (decoded.alerts ?? []).map((d) => String((d.value.event as { alert_id: string }).alert_id)),
    );
    const { rows: alerts } = await pg.query<{ alert_id: string }>(`SELECT alert_id FROM alerts${where}`, args);
    const haveAlerts = new Set(alerts.map((a) => a.alert_id));
    checks.push(
      check(
        'postgres alerts vs alert ids in topic',
        alertIds.size,
        alerts.length,
        [...alertIds].filter((id) => !haveAlerts.has(id)).length,
        alerts.length - [...haveAlerts].filter((id) => alertIds.has(id)).length,
      ),
    );
  } finally {
    await pg.end();
  }

  if (o.redis) {
    const k = redisKeys(p.config.topicPrefix);
    // A session is the pair (tenant_id, session_id): so are its Redis keys.
    const newest = new Map<string, { tenant: string; sid: string; ts: number }>();
    for (const d of decoded.scores ?? []) {
      const id = JSON.stringify([d.value.tenant_id, d.value.session_id]);
      const ts = Math.max(newest.get(id)?.ts ?? 0, d.value.ts);
      newest.set(id, { tenant: d.value.tenant_id, sid: d.value.session_id, ts });
    }
    let wrong = 0;
    for (const { tenant, sid, ts } of newest.values()) {
      const have = await o.redis.hget(k.latest(tenant, sid), 'ts');
      if (Number(have) !== ts) wrong++;
    }
    checks.push(
      check('redis latest score ts per session vs newest in topic', newest.size, newest.size - wrong, wrong, 0),
    );
    const endedIds = (decoded.sessions ?? [])
      .filter((d) => (d.value.event as { type?: string } | undefined)?.type === 'SessionEnded')
      .map((d) => [d.value.tenant_id, d.value.session_id] as const);
    let missing = 0;
    for (const [tenant, sid] of endedIds) if (!(await o.redis.hexists(k.latest(tenant, sid), 'ended_at'))) missing++;
    checks.push(check('redis ended_at per ended session', endedIds.length, endedIds.length - missing, missing, 0));
  }

  if (o.reference) {
    for (const key of ['scores', 'alerts'] as const) {
      const want = o.reference[key];
      const have = ids[key]!;
      const lost = [...want].filter((id) => !have.has(id)).length;
      const extraIds = new Set([...have].filter((id) => !want.has(id)));
      const extra = extraIds.size;
      // Which sessions and windows the extra outputs are (the next question when there are any).
      const extras = (decoded[key] ?? []).filter((d) => extraIds.has(d.value.event_id));
      const sample = extras
        .slice(0, 8)
        .map((d) => {
          const at = Number(d.value.window_end_ts ?? d.value.ts);
          return `${d.value.session_id.slice(0, 8)}@${new Date(at).toISOString().slice(11, 19)}${typeof d.value.type === 'string' ? ` ${d.value.type}` : ''}`;
        })
        .join(', ');
      checks.push(
        check(
          o.reference.late_left_out
            ? `topic ${key} vs an undisturbed reference replay of the accepted input (${o.reference.late_left_out} late records left out)`
            : `topic ${key} vs an undisturbed reference replay`,
          want.size,
          have.size,
          lost,
          extra,
          extra
            ? `ids the reference did not produce, in ${new Set(extras.map((d) => d.value.session_id)).size} sessions: ${sample}`
            : undefined,
        ),
      );
    }
  }

  // Dead letters: each poison record from the processor and from every projection reading its topic.
  const dlq = await readToEnd(p.kafka, p.topics.dlq, { timeoutMs: 60_000 });
  const h = (r: ReadRecord, name: string) => (r.headers[name] === undefined ? undefined : String(r.headers[name]));
  const byConsumer = new Map<string, number>();
  let dlqOfTenant = 0;
  for (const r of dlq) {
    if (o.tenant !== undefined) {
      // Another tenant's (decodable) records are not this audit's: the drill counts them.
      const v = await p.serde.decode<{ tenant_id?: unknown }>(r.value).then(
        (d) => d.value,
        () => undefined,
      );
      if (v !== undefined && v.tenant_id !== o.tenant) continue;
    }
    dlqOfTenant++;
    const src = `${h(r, 'vigil.dlq.source.topic')}/${h(r, 'vigil.dlq.source.partition')}/${h(r, 'vigil.dlq.source.offset')}`;
    // The processor names its group (`<prefix>.processor.fatigue`), projections `projection.<model>`.
    const consumer = String(h(r, 'vigil.dlq.consumer')).replace(`${p.config.topicPrefix}.`, '');
    const c = `${src}|${consumer}`;
    byConsumer.set(c, (byConsumer.get(c) ?? 0) + 1);
  }
  const readers = (key: TopicKey) => [
    ...(fatigueProcessor.inputs.includes(key) ? [`processor.${fatigueProcessor.name}`] : []),
    ...Object.values(readModels)
      .filter((m) => m.topics.includes(key))
      .map((m) => `projection.${m.name}`),
    ...(redisTopics.includes(key) ? ['projection.redis'] : []),
  ];
  let expectedLetters = 0;
  let missingLetters = 0;
  let doubleLetters = 0;
  const expectedKeys = new Set<string>();
  for (const { topic, record } of poison) {
    for (const consumer of readers(topic)) {
      expectedLetters++;
      const c = `${p.topics[topic]}/${record.partition}/${record.offset}|${consumer}`;
      expectedKeys.add(c);
      const n = byConsumer.get(c) ?? 0;
      if (n === 0) missingLetters++;
      if (n > 1) doubleLetters += n - 1;
    }
  }
  const stray = [...byConsumer.keys()].filter((c) => !expectedKeys.has(c)).length;
  checks.push(
    check(
      'dlq: each poison record once per consumer of its topic',
      expectedLetters,
      dlqOfTenant,
      missingLetters,
      doubleLetters + stray,
      stray ? `${stray} dead letters of records that decode` : undefined,
    ),
  );

  return {
    ...totals(checks),
    input_events: inputEvents,
    input_duplicates: inputDuplicates,
    poison_records: poison.length,
    checks,
  };
}

export interface ReferenceRun {
  scores: Set<string>;
  alerts: Set<string>;
  records_in: number;
  /** Input records the live run found late (its `late` topic), left out of the replay. */
  late_left_out: number;
}

/**
 * The input records the live processor handed to the `late` topic, as `topic/partition/offset`.
 * Lateness depends on arrival timing (an input whose partition leader is away for seconds delivers
 * behind the others, processors/merge.ts), so no replay can reproduce it; what a replay can check is
 * that everything else came out the same. Late copies written before their partition was recorded
 * (older runs) carry no partition: then any partition of that topic at that offset matches.
 */
async function lateInputs(p: Pipeline): Promise<Set<string>> {
  const out = new Set<string>();
  for (const r of await readToEnd(p.kafka, p.topics.late, { timeoutMs: 60_000 })) {
    const h = (name: string) => r.headers[name]?.toString();
    const topic = h('vigil.late.source.topic');
    const offset = h('vigil.late.source.offset');
    if (topic && offset) out.add(`${topic}/${h('vigil.late.source.partition') ?? '*'}/${offset}`);
  }
  return out;
}

/**
 * An undisturbed fatigue processor (in this process) replaying the pipeline's input topics from
 * offset 0 into output topics of its own (`<prefix>-ref.*`): what the live topics should hold.
 */
export async function referenceRun(p: Pipeline, timeoutMs = 180_000): Promise<ReferenceRun> {
  const refPrefix = `${p.config.topicPrefix}-ref`;
  const refConfig = loadConfig({ ...process.env, ...p.env, VIGIL_TOPIC_PREFIX: refPrefix });
  await ensureTopics(p.admin, topicPlan(refConfig));
  const own = topicNames(refPrefix);
  const topics = {
    ...p.topics,
    scores: own.scores,
    alerts: own.alerts,
    changelog: own.changelog,
    late: own.late,
    dlq: own.dlq,
  };
  const serde = new AvroSerde(p.config.schemaRegistryUrl, topics);
  await serde.register(topicKeys);
  const ends = async () => {
    let n = 0;
    for (const key of fatigueProcessor.inputs) {
      for (const o of await p.admin.fetchTopicOffsets(p.topics[key as TopicKey])) n += Number(o.high);
    }
    return n;
  };
  const total = await ends();
  const late = await lateInputs(p);
  const runner = new ProcessorRunner(fatigueProcessor, {
    exclude: (topic, partition, offset) =>
      late.has(`${topic}/${partition}/${offset}`) || late.has(`${topic}/*/${offset}`),
    kafka: p.kafka,
    serde,
    topics,
    log: createLogger({ level: 'error', role: 'drill-reference' }),
    groupPrefix: refPrefix,
    // The live processor's window (the pipeline's env): the same records refused as live.
    tsWindow: refConfig.tsWindow,
  });
  const deadline = Date.now() + timeoutMs;
  // Right after a broker restart the transaction coordinator may still be loading: wait until a
  // transactional producer can initialise before the runner's own producers try.
  for (;;) {
    const probe = p.kafka.producer({ transactionalId: `${refPrefix}.probe`, idempotent: true, maxInFlightRequests: 1 });
    try {
      await probe.connect();
      const tx = await probe.transaction();
      await tx.abort();
      await probe.disconnect();
      break;
    } catch (err) {
      await probe.disconnect().catch(() => {});
      if (Date.now() > deadline) throw err;
      await sleep(2_000);
    }
  }
  await runner.start();
  while (runner.metrics.recordsIn < total) {
    if (Date.now() > deadline) throw new Error(`reference run read ${runner.metrics.recordsIn} of ${total} records`);
    await sleep(200);
  }
  // Read is not done: records the merge still holds (a SessionEnded waiting for its session's other
  // inputs to be seen caught up, by the next freshness check) and outputs waiting for the commit tick.
  // Stopping before they settle would leave the reference without its sessions' last windows.
  while ((await runner.unsettled()) > 0) {
    if (Date.now() > deadline) throw new Error('reference run did not settle (records still held)');
    await sleep(200);
  }
  await runner.stop();
  const read = async (topic: string) => {
    const out = new Set<string>();
    for (const r of await readToEnd(p.kafka, topic, { timeoutMs: 60_000 })) {
      out.add((await serde.decode<{ event_id: string }>(r.value)).value.event_id);
    }
    return out;
  };
  return {
    scores: await read(own.scores),
    alerts: await read(own.alerts),
    records_in: runner.metrics.recordsIn,
    late_left_out: late.size,
  };
}

/**
 * Waits until the pipeline has drained: the processor's committed offsets reach the ends of its
 * input topics and every projection checkpoint (PostgreSQL and Redis) stops moving for `quietMs`.
 */
export async function drain(
  p: Pipeline,
  o: { redis?: Redis; timeoutMs?: number; quietMs?: number } = {},
): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + (o.timeoutMs ?? 120_000);
  const quietMs = o.quietMs ?? 3_000;
  let last = '';
  let since = Date.now();
  const g = p.groups();
  for (;;) {
    const inputs = fatigueProcessor.inputs.map((k) => p.topics[k as TopicKey]);
    let behind = 0;
    try {
      const committed = await p.admin.fetchOffsets({ groupId: g.processor, topics: inputs });
      for (const t of committed) {
        const ends = await p.admin.fetchTopicOffsets(t.topic);
        for (const part of t.partitions) {
          const high = Number(ends.find((e) => e.partition === part.partition)?.high ?? 0);
          const at = Number(part.offset) < 0 ? 0 : Number(part.offset);
          behind += Math.max(0, high - at);
        }
      }
    } catch {
      behind = -1;
    }
    let marks = '';
    try {
      const c = new Client({ connectionString: p.db.url });
      await c.connect();
      const { rows } = await c.query<{ s: string }>(
        'SELECT coalesce(sum(next_offset), 0)::text AS s FROM projection_checkpoints',
      );
      await c.end();
      marks = rows[0]!.s;
      if (o.redis) {
        const h = await o.redis.hgetall(redisKeys(p.config.topicPrefix).checkpoints('redis'));
        marks += `/${Object.values(h).reduce((n, v) => n + Number(v), 0)}`;
      }
    } catch {
      marks = `error ${Date.now()}`;
    }
    const state = `${behind}|${marks}`;
    if (state !== last) {
      last = state;
      since = Date.now();
    } else if (behind === 0 && Date.now() - since >= quietMs) {
      return Date.now() - t0;
    }
    if (Date.now() > deadline) throw new Error(`pipeline not drained after ${o.timeoutMs ?? 120_000} ms (${state})`);
    await sleep(500);
  }
}

/**
 * The reference of one tenant's outputs: the pure Replay (processors/rescore/replay.ts: the live
 * runner's merge, trust rules and eviction, no Kafka) of the fatigue processor over that tenant's
 * input records only, read back from the pipeline's input topics (records breaking the rule table
 * left out, as the live runner dead-letters them). What the live topics must hold for the tenant
 * had no other tenant sent anything. Records carry no append time here (read-to-end does not keep
 * it): their `ts` stands in, which for a real-time simulator is within a second of it.
 */
export async function tenantReference(p: Pipeline, tenant: string): Promise<ReferenceRun> {
  const perPartition = new Map<number, Map<TopicKey, ReplayRecord[]>>();
  let recordsIn = 0;
  for (const key of fatigueProcessor.inputs as TopicKey[]) {
    for (const r of await readToEnd(p.kafka, p.topics[key], { timeoutMs: 120_000 })) {
      let value: { tenant_id?: unknown; session_id?: unknown; ts?: unknown };
      try {
        value = (await p.serde.decode<typeof value>(r.value)).value;
      } catch {
        continue;
      }
      if (value.tenant_id !== tenant || typeof value.ts !== 'number' || typeof value.session_id !== 'string') continue;
      if (recordRefusal(key, value, value.ts)) continue;
      const byTopic = perPartition.get(r.partition) ?? perPartition.set(r.partition, new Map()).get(r.partition)!;
      const list = byTopic.get(key) ?? byTopic.set(key, []).get(key)!;
      list.push({ offset: r.offset, session: value.session_id, ts: value.ts, value });
      recordsIn++;
    }
  }
  const scores = new Set<string>();
  const alerts = new Set<string>();
  const replay = new Replay(fatigueProcessor, (out) => {
    (out.topic === 'alerts' ? alerts : scores).add((out.value as unknown as { event_id: string }).event_id);
  });
  for (const [partition, byTopic] of perPartition) {
    // Arrival order as live: a k-way merge by ts of the topics (each in offset order), pushed in runs.
    const heads = new Map([...byTopic.keys()].map((k) => [k, 0]));
    let run: { key: TopicKey; records: ReplayRecord[] } | undefined;
    for (;;) {
      let best: TopicKey | undefined;
      for (const [k, i] of heads) {
        const r = byTopic.get(k)![i];
        if (r && (best === undefined || r.ts < byTopic.get(best)![heads.get(best)!]!.ts)) best = k;
      }
      if (best === undefined) break;
      const rec = byTopic.get(best)![heads.get(best)!]!;
      heads.set(best, heads.get(best)! + 1);
      if (run && (run.key !== best || run.records.length >= 500)) {
        replay.push(partition, run.key, run.records);
        run = undefined;
      }
      run ??= { key: best, records: [] };
      run.records.push(rec);
    }
    if (run) replay.push(partition, run.key, run.records);
    for (const k of fatigueProcessor.inputs as TopicKey[]) replay.reached(partition, k);
  }
  replay.finish();
  // Leaves nothing out: the drill it serves (tenant flood) disturbs no input's delivery.
  return { scores, alerts, records_in: recordsIn, late_left_out: 0 };
}
