/**
 * The load of `npm run bench -- e2e`, as its own process: S simulated sessions in real time whose
 * event time starts at the wall clock of the first send (so device `ts` and wall time agree, which
 * the freshness figures rely on; `vigil simulate` floors its start to the second and connects
 * after choosing it). Either through the producer library (`producer`) or the HTTP ingest gateway
 * (`gateway`: one POST per stream per 100 ms tick, at most 1,000 events each, device key).
 * Arguments come as one JSON object in argv[2]; prints one JSON line with the counts at the end.
 */
import { loadConfig } from '../core/config';
import { createLogger } from '../core/logger';
import { createKafka } from '../core/kafka';
import { AvroSerde } from '../core/serde';
import { Publisher } from '../producers/publisher';
import { runSimulation, topicsOf } from '../producers/simulator/run';
import { sessionEvents } from '../producers/simulator/session';
import { topicNames } from '../schemas/catalogue';
import { exitOnError } from './lib';

export interface LoadArgs {
  via: 'producer' | 'gateway';
  sessions: number;
  seconds: number;
  seed: number;
  tenant: string;
  gatewayUrl?: string;
  deviceKey?: string;
}

const streamOf = { sessions: 'sessions', eeg: 'eeg', face: 'face', vehicle: 'vehicle', game: 'game' } as const;

async function viaProducer(a: LoadArgs) {
  const config = loadConfig(process.env);
  const kafka = createKafka(config.kafka, createLogger({ level: 'error', role: 'bench-load' }), 'bench-load');
  const topics = topicNames(config.topicPrefix);
  const serde = new AvroSerde(config.schemaRegistryUrl, topics);
  const opts = {
    sessions: a.sessions,
    durationMs: a.seconds * 1000,
    speed: 'realtime' as const,
    seed: a.seed,
    profile: 'mixed' as const,
    tenantId: a.tenant,
    startTs: 0,
  };
  await serde.register(topicsOf({}));
  const publisher = new Publisher(kafka, serde, topics);
  await publisher.connect();
  const r = await runSimulation(publisher, { ...opts, startTs: Date.now() });
  await publisher.disconnect();
  return r.published;
}

async function viaGateway(a: LoadArgs) {
  const startTs = Date.now();
  const gens = Array.from({ length: a.sessions }, (_, index) =>
    sessionEvents({
      seed: a.seed,
      index,
      tenantId: a.tenant,
      startTs,
      durationMs: a.seconds * 1000,
      profile: (['alert', 'drowsy', 'severe'] as const)[index % 3]!,
    }),
  );
  const pending = gens.map((g) => g.next());
  const published: Record<string, number> = {};
  const failed: Record<string, number> = {};
  const post = async (stream: string, events: unknown[]) => {
    for (let i = 0; i < events.length; i += 1000) {
      const chunk = events.slice(i, i + 1000);
      const res = await fetch(`${a.gatewayUrl}/v1/ingest/${stream}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${a.deviceKey}` },
        body: JSON.stringify(chunk),
      }).catch(() => undefined);
      if (res) await res.arrayBuffer();
      const key = res?.status === 202 ? published : failed;
      key[stream] = (key[stream] ?? 0) + chunk.length;
    }
  };
  for (let simNow = startTs; ; simNow += 100) {
    const batch: Record<string, unknown[]> = { sessions: [], eeg: [], face: [], vehicle: [], game: [] };
    const starts: unknown[] = [];
    let live = false;
    for (let i = 0; i < gens.length; i++) {
      let r = pending[i]!;
      while (!r.done && r.value.event.ts <= simNow) {
        const e = r.value;
        if (e.topic === 'sessions' && e.event.event.type === 'SessionStarted') starts.push(e.event);
        else batch[streamOf[e.topic]]!.push(e.event);
        r = gens[i]!.next();
      }
      pending[i] = r;
      live ||= !r.done;
    }
    if (starts.length) await post('sessions', starts);
    await Promise.all(Object.entries(batch).map(([s, ev]) => (ev.length ? post(s, ev) : undefined)));
    if (!live) break;
    const wait = startTs + (simNow + 100 - startTs) - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return { ...published, failed };
}

async function main() {
  const a = JSON.parse(process.argv[2] ?? '{}') as LoadArgs;
  const counts = a.via === 'gateway' ? await viaGateway(a) : await viaProducer(a);
  process.stdout.write(`${JSON.stringify({ published: counts })}\n`);
  process.exit(0);
}

main().catch(exitOnError);
