import { sessionEvents } from '../producers/simulator/session';
import type { TopicKey, ValueOf } from '../schemas/catalogue';
import { eventually, freePort, processEnv, testConfig } from './support/env';
import { pipelineFixture, type PipelineFixture } from './support/pipeline';
import { processGroup, runVigil, type VigilProcessGroup } from './support/processes';

/**
 * Acknowledging an alert end to end, as separate processes: the API appends AcknowledgeAlert, the
 * fatigue processor (the alerts topic's one writer) turns it into AlertAcknowledged, the projections
 * make it visible, and the API then reads the alert as acknowledged by whom the request said.
 */
interface Alert {
  alert_id: string;
  session_id: string;
  status: string;
  level: number | null;
  reason: string | null;
  acknowledged_by: string | null;
}

describe('alert acknowledgement: API → commands topic → processor → read models → API', () => {
  const config = testConfig();
  let fx: PipelineFixture;
  let env: Record<string, string>;
  let api: string;
  let readerKey: string;
  let vigil: VigilProcessGroup | undefined;

  beforeAll(async () => {
    fx = await pipelineFixture(config);
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    env = processEnv(config, { VIGIL_DATABASE_URL: fx.databaseUrl, VIGIL_API_PORT: String(port) });
    readerKey = (await runVigil(['keys', 'create', '--tenant', 'fleet-ack', '--role', 'reader'], env)).match(
      /vgl_\S+/,
    )![0];
    vigil = processGroup(env);
    for (const role of ['process', 'project', 'api']) vigil.start([role]);
    await eventually(
      () =>
        fetch(`${api}/health/live`).then(
          (r) => r.status,
          () => 0,
        ),
      (s) => s === 200,
      60_000,
    );
  });

  afterAll(async () => {
    await vigil?.stopAll('SIGTERM');
    await fx?.close();
  });

  it('shows the alert acknowledged by the requester once the processor accepted the command', async () => {
    // A severe session from 280 s ago to 50 s ahead, still running (no SessionEnded): the command,
    // stamped now, is behind the processor's watermark and takes effect at once. (The processor
    // refuses a ts more than 60 s ahead of the broker's append time, so the session ends before that.)
    const { publisher } = fx;
    const startTs = Math.floor(Date.now() / 1000) * 1000 - 280_000;
    const plan = { seed: 9, index: 0, tenantId: 'fleet-ack', startTs, durationMs: 330_000, profile: 'severe' as const };
    const byTopic = new Map<TopicKey, unknown[]>();
    for (const e of sessionEvents(plan)) {
      if (e.topic === 'sessions' && e.event.event.type === 'SessionEnded') continue;
      byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e.event]);
    }
    for (const [key, events] of byTopic) await publisher.publish(key, events as ValueOf<typeof key>[]);
    await publisher.flush();

    const alerts = async (state: string) =>
      (
        (await (
          await fetch(`${api}/v1/alerts?state=${state}`, { headers: { authorization: `Bearer ${readerKey}` } })
        ).json()) as { alerts: Alert[] }
      ).alerts;
    // A level alert (drowsy or severe): it stays active while the severe session runs, whereas timer
    // alerts (microsleep, face lost) may already be cleared in the processor while a lagging projection
    // still shows them active (an ack of a cleared alert is ignored). And the alerts projection caught
    // up with its topic first, so what the API lists is what the processor holds.
    const alertsLag = async () => {
      const ready = (await (await fetch(`${api}/health/ready`)).json()) as {
        checks?: { projection_lag?: { report?: { byProjection?: Record<string, number> } } };
      };
      return ready.checks?.projection_lag?.report?.byProjection?.alerts ?? -1;
    };
    const active = await eventually(
      // Caught up: at most the last commit marker of each of the 3 partitions left (it counts in the end offset).
      async () => {
        const lag = await alertsLag();
        return lag >= 0 && lag <= 3 ? alerts('active') : [];
      },
      (as) => as.some((a) => a.reason === 'drowsy' || a.reason === 'severe'),
      90_000,
    );
    const target = active.find((a) => a.reason === 'drowsy' || a.reason === 'severe');
    expect(target).toBeDefined();

    const res = await fetch(`${api}/v1/alerts/${target!.alert_id}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readerKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'dispatcher-7' }),
    });
    expect(res.status).toBe(202);
    const acked = await eventually(
      async () => (await alerts('all')).find((a) => a.alert_id === target!.alert_id),
      (a) => a?.status === 'acknowledged',
      60_000,
    );
    expect(acked).toMatchObject({
      alert_id: target!.alert_id,
      session_id: target!.session_id,
      status: 'acknowledged',
      // The audit trail: the key that acknowledged, then the free text the requester gave.
      acknowledged_by: `key:${/^vgl_([^_]+)_/.exec(readerKey)![1]} (dispatcher-7)`,
    });
  });
});
