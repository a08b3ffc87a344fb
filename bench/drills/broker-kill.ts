import { Pool } from 'pg';
import type { Admin } from 'kafkajs';
import { PrivateKafkaCluster } from '../../deploy/local/kafka-cluster';
import { sleep } from '../pipeline';
import { readToEnd } from '../../core/read-to-end';
import { PrivatePostgres } from './services';
import type { Ctx, DrillSpec } from './drills';

/**
 * `broker-kill` (issue 17): a private three-node KRaft cluster (deploy/local/kafka-cluster.sh;
 * topics with 3 replicas and min.insync.replicas=2, producers acks=all + idempotent), two
 * processor instances, real-time load; a third of the way in, SIGKILL of the node that leads most
 * partitions of the busiest input topic, kept down `downSeconds`, then started again. Passes when
 * the audit is clean (zero lost, zero duplicated, outputs equal an undisturbed replay), the pipeline
 * made progress while the node was down, and every partition is back to three in-sync replicas.
 *
 * Recovery is reported three ways: how long after the kill the projections moved again
 * (`progress_after_kill_ms`: leader election + clients noticing), how long the restarted node took
 * to start, and how long until no partition was under-replicated (`isr_full_after_restart_ms`).
 */
const ref: { cluster?: PrivateKafkaCluster } = {};

export const brokerKill: DrillSpec = {
  setup: async () => {
    // Storage, topics of earlier runs included, is wiped each time: a cluster that carried many
    // drills' topics would start (and recover) slower than the one being measured.
    const cluster = await PrivateKafkaCluster.start({
      nodes: 3,
      security: 'plaintext',
      dir: 'drill/broker-kill',
      fresh: true,
    });
    ref.cluster = cluster;
    // A PostgreSQL of its own too (services.ts): the drill's load and its audit stay off the shared server.
    const pg = await PrivatePostgres.start().catch((err: unknown) => {
      cluster.remove();
      throw err;
    });
    return {
      brokers: cluster.brokers,
      databaseServerUrl: pg.url,
      cleanup: async () => {
        cluster.remove();
        await pg.remove();
      },
    };
  },
  extraRoles: { 'processor-2': ['process'] },
  async during(c) {
    const cluster = ref.cluster!;
    const { admin, topics } = c.p;
    await sleep(Math.max(0, (c.o.seconds * 1000) / 3 - (performance.now() - c.t0)));
    const leaders = await leaderCounts(admin, topics.eeg);
    const victim = Number(Object.entries(leaders).sort((a, b) => b[1] - a[1])[0]![0]);
    const pool = new Pool({ connectionString: c.p.db.url, max: 1 });
    try {
      const rowsAtKill = await eegRows(pool);
      const killedAt = performance.now();
      cluster.kill(victim);
      c.mark(`SIGKILL broker ${victim} (leader of ${leaders[victim]} of ${c.o.partitions} eeg partitions)`);
      // Progress while it is down: the projection moves past what it held at the kill.
      let progressMs: number | null = null;
      // At least 30 s: the node is fenced after 6 s (its partitions get new leaders), and the clients
      // find the new leaders within their retry backoff after that (the projections moved again up to
      // 19 s after the kill). The drill is about the cluster working without the node, so it stays
      // down well past that.
      const downUntil = killedAt + Math.max(c.o.downSeconds, 30) * 1000;
      while (performance.now() < downUntil) {
        if (progressMs === null && (await eegRows(pool)) > rowsAtKill) {
          progressMs = Math.round(performance.now() - killedAt);
          c.mark(`pipeline moved again ${progressMs} ms after the kill`);
        }
        await sleep(250);
      }
      const rowsWhileDown = (await eegRows(pool)) - rowsAtKill;
      // The admin client may still try the dead node first: a failed look-up is recorded as null.
      const isrWhileDown = await underReplicated(admin, Object.values(topics)).catch(() => null);
      const t = performance.now();
      cluster.startNode(victim);
      const startMs = Math.round(performance.now() - t);
      c.mark(`broker ${victim} started again (${startMs} ms)`);
      const isrMs = await until(async () => (await underReplicated(admin, Object.values(topics))) === 0, 120_000);
      c.mark(
        isrMs === null ? 'partitions still under-replicated after 120 s' : `all partitions in sync ${isrMs} ms later`,
      );
      c.observations.broker_kill = {
        broker: victim,
        leader_of_eeg_partitions: leaders[victim],
        progress_after_kill_ms: progressMs,
        eeg_rows_projected_while_down: rowsWhileDown,
        under_replicated_partitions_while_down: isrWhileDown,
        broker_start_ms: startMs,
        isr_full_after_restart_ms: isrMs,
        processor_instances: 2,
      };
    } finally {
      await pool.end();
    }
  },
  async after(c) {
    // Records the processor found late (arrival skew between co-partitioned inputs led by different nodes).
    const late = await readToEnd(c.p.kafka, c.p.topics.late, { timeoutMs: 30_000 });
    c.observations.late_records = late.length;
    // Where they came from (source topic/partition), for whoever investigates a run with late records.
    const bySource: Record<string, number> = {};
    for (const r of late) {
      const source = `${String(r.headers['vigil.late.source.topic'])}/${String(r.headers['vigil.late.source.partition'])}`;
      bySource[source] = (bySource[source] ?? 0) + 1;
    }
    if (late.length) c.observations.late_by_source = bySource;
  },
  passes: (c: Ctx) => {
    const o = c.observations.broker_kill as {
      progress_after_kill_ms: number | null;
      isr_full_after_restart_ms: number | null;
    };
    return o.progress_after_kill_ms !== null && o.isr_full_after_restart_ms !== null;
  },
};

/** Partitions of `topic` each node leads. */
async function leaderCounts(admin: Admin, topic: string): Promise<Record<number, number>> {
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const counts: Record<number, number> = {};
  for (const p of meta.topics[0]!.partitions) counts[p.leader] = (counts[p.leader] ?? 0) + 1;
  return counts;
}

/** Partitions of these topics with fewer in-sync replicas than replicas. */
async function underReplicated(admin: Admin, topics: string[]): Promise<number> {
  const meta = await admin.fetchTopicMetadata({ topics });
  return meta.topics.flatMap((t) => t.partitions).filter((p) => p.isr.length < p.replicas.length).length;
}

async function eegRows(pool: Pool): Promise<number> {
  return Number((await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM eeg_frames')).rows[0]!.n);
}

/** ms until `check()` holds (polled every 500 ms), or null after `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await check().catch(() => false)) return Math.round(performance.now() - t0);
    await sleep(500);
  }
  return null;
}
