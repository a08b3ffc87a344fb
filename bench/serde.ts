import { sessionEvents } from '../producers/simulator/session';
import type { AvroSerde } from '../core/serde';
import type { TopicKey } from '../schemas/catalogue';
import { benchKafka } from './setup';
import { peakRssMiB, round, spread, table, writeResults } from './lib';

/**
 * Serde: Avro body + 5-byte header size against the same event as JSON; encode + decode time per
 * event (steady state, schema cached); registry requests per event in steady state (counted).
 */
export async function serdeBench(): Promise<void> {
  const { serde } = await benchKafka('serde', 1);
  const events = [
    ...sessionEvents({
      seed: 1,
      index: 0,
      tenantId: 'bench',
      startTs: Date.UTC(2026, 0, 1),
      durationMs: 600_000,
      profile: 'severe',
    }),
  ];
  const byTopic = new Map<TopicKey, unknown[]>();
  for (const e of events) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e.event]);

  const rows: (string | number)[][] = [];
  const results: Record<string, object> = {};
  for (const [key, values] of byTopic) {
    const avroBytes = values.reduce<number>((n, v) => n + serde.encode(key, v as never).length, 0);
    const jsonBytes = values.reduce<number>((n, v) => n + Buffer.byteLength(JSON.stringify(v)), 0);
    const timing = await timeRoundTrips(serde, key, values, 5);
    const ratio = avroBytes / jsonBytes;
    results[key] = {
      events: values.length,
      avro_bytes_per_event: round(avroBytes / values.length),
      json_bytes_per_event: round(jsonBytes / values.length),
      size_ratio: round(ratio),
      encode_decode_us: timing.us,
      registry_requests_per_event: timing.registryPerEvent,
    };
    rows.push([
      key,
      values.length,
      round(avroBytes / values.length),
      round(jsonBytes / values.length),
      `${(ratio * 100).toFixed(1)}%`,
      `${timing.us.median} (${timing.us.min}-${timing.us.max})`,
      timing.registryPerEvent,
    ]);
  }
  writeResults(
    'serde',
    {
      results,
      peak_rss_mib: peakRssMiB(),
      goals: { size_ratio_max: 0.45, encode_decode_us_max: 1.5, registry_requests_per_event: 0 },
    },
    table(
      [
        'topic',
        'events',
        'Avro B/event',
        'JSON B/event',
        'Avro/JSON',
        'encode+decode µs (median, min-max of 5)',
        'registry req/event',
      ],
      rows,
    ) +
      `\n\nGoals: Avro/JSON <= 45%, encode+decode <= 1.5 µs, 0 registry requests per event. Peak RSS ${peakRssMiB()} MiB.`,
  );
}

async function timeRoundTrips(serde: AvroSerde, key: TopicKey, values: unknown[], runs: number) {
  // Warm up (JIT, schema caches), then measure steady state.
  for (const v of values.slice(0, 2000)) await serde.decode(serde.encode(key, v as never));
  const before = serde.registryRequests;
  const us: number[] = [];
  let n = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (const v of values) {
      // Steady state: the synchronous path (the writer schema is known after the warm-up).
      const bytes = serde.encode(key, v as never);
      if (!serde.decodeKnown(bytes)) await serde.decode(bytes);
      n++;
    }
    us.push(Number(process.hrtime.bigint() - t0) / 1000 / values.length);
  }
  return { us: spread(us), registryPerEvent: (serde.registryRequests - before) / n };
}
