/**
 * Producer commands: `vigil simulate`, `vigil publish`, `vigil tail` and the ingest gateway
 * `vigil gateway`. Heavy modules load inside the actions (telemetry starts first).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { boot, duration, oneShot, positiveInt, timestamp } from '../core/command-line';
import { started } from '../core/metrics';

export function register(program: Command): void {
  program
    .command('simulate')
    .description(
      'publish simulated sessions, seeded: SessionStarted, EEG 10/s, face 15/s, vehicle 10/s, game events (lane departures, PVT stimuli), SessionEnded',
    )
    .addOption(new Option('--sessions <n>', 'concurrent sessions').argParser(positiveInt).default(5))
    .addOption(
      new Option('--duration <d>', 'event-time length of each session: 90s, 5m, 1h')
        .argParser(duration)
        .default(60_000, '60s'),
    )
    .addOption(
      new Option('--speed <speed>', 'realtime paces event time to the wall clock; max sends as fast as Kafka acks')
        .choices(['realtime', 'max'])
        .default('realtime'),
    )
    .addOption(
      new Option('--seed <n>', 'random seed: same seed and start, same events').argParser(positiveInt).default(1),
    )
    .addOption(
      new Option('--profile <p>', 'fatigue profile of the sessions')
        .choices(['alert', 'drowsy', 'severe', 'mixed'])
        .default('mixed'),
    )
    .option('--tenant <id>', 'tenant id of the sessions', 'demo')
    .addOption(
      new Option(
        '--start <time>',
        'event time of the start (ISO-8601); default now. The processor accepts ts only 60 s ahead to 24 h behind the broker append time (VIGIL_TS_MAX_AHEAD_MS, VIGIL_TS_MAX_AGE_MS): an older start is dead-lettered (ts_out_of_window)',
      ).argParser(timestamp),
    )
    .addOption(
      new Option(
        '--modalities <list>',
        'telemetry to publish, comma-separated: eeg,face,vehicle,game (sessions always)',
      )
        .argParser((v: string) => {
          const all = ['eeg', 'face', 'vehicle', 'game'] as const;
          const list = v.split(',').map((m) => m.trim());
          const bad = list.filter((m) => !(all as readonly string[]).includes(m));
          if (bad.length || !list.length)
            throw new InvalidArgumentError(`unknown ${bad.join(', ')}; use ${all.join(',')}`);
          return all.filter((m) => list.includes(m));
        })
        .default(['eeg', 'face', 'vehicle', 'game'], 'eeg,face,vehicle,game'),
    )
    .option(
      '--digest',
      'publish nothing: print a SHA-256 over the JSON of all generated events and the count per topic',
    )
    .action(
      async (o: {
        sessions: number;
        duration: number;
        speed: 'realtime' | 'max';
        seed: number;
        profile: 'alert' | 'drowsy' | 'severe' | 'mixed';
        tenant: string;
        start?: number;
        modalities: ('eeg' | 'face' | 'vehicle' | 'game')[];
        digest?: boolean;
      }) => {
        const opts = {
          sessions: o.sessions,
          durationMs: o.duration,
          speed: o.speed,
          seed: o.seed,
          profile: o.profile,
          tenantId: o.tenant,
          startTs: o.start ?? Math.floor(Date.now() / 1000) * 1000,
          modalities: o.modalities,
        };
        if (o.digest) {
          // Pure: needs no configuration and no stack.
          const { digestSimulation } = await import('./simulator/run');
          const d = digestSimulation(opts);
          process.stdout.write(`${JSON.stringify({ ...d, start: new Date(opts.startTs).toISOString() })}\n`);
          if (o.start === undefined)
            process.stderr.write('vigil: no --start, so event times (and the digest) follow the clock\n');
          return;
        }
        await oneShot('simulate', async (rt) => {
          const { simulate } = await import('./simulate');
          const { sessionIdOf } = await import('./simulator/session');
          const ids = Array.from({ length: o.sessions }, (_, i) => sessionIdOf(o.seed, i));
          process.stdout.write(`sessions: ${ids.join(' ')}\n`);
          const abort = new AbortController();
          rt.lifecycle.onClose('simulation', () => abort.abort());
          const t0 = performance.now();
          const { published } = await simulate(rt, opts, abort.signal);
          const total = Object.values(published).reduce((a, b) => a + b, 0);
          const seconds = (performance.now() - t0) / 1000;
          process.stdout.write(
            `published ${total} events in ${seconds.toFixed(1)} s (${Math.round(total / seconds)}/s): ${JSON.stringify(published)}\n`,
          );
        });
      },
    );
  program
    .command('publish')
    .description('publish NDJSON events (one per line) to a catalogue topic; bad lines are reported and counted')
    .requiredOption(
      '--topic <topic>',
      'catalogue topic: a key (eeg, face, vehicle, game, sessions, ...) or its full name',
    )
    .argument('[file]', 'NDJSON file, or - for standard input', '-')
    .option('--strict', 'stop at the first bad line')
    .action((file: string, o: { topic: string; strict?: boolean }) =>
      oneShot('publish', async (rt) => {
        const fs = await import('node:fs');
        const { topicKeys } = await import('../schemas/catalogue');
        const { Publisher } = await import('./publisher');
        const { publishNdjson } = await import('./ndjson');
        const key = topicKeys.find((k) => k === o.topic || rt.topics[k] === o.topic);
        if (!key) throw new InvalidArgumentError(`unknown topic ${o.topic}; use one of ${topicKeys.join(', ')}`);
        await rt.serde.register([key]);
        const publisher = new Publisher(rt.kafka, rt.serde, rt.topics, { log: rt.log });
        await publisher.connect();
        rt.lifecycle.onClose('publisher', () => publisher.disconnect());
        const input = file === '-' ? process.stdin : fs.createReadStream(file);
        const r = await publishNdjson(publisher, rt.serde, key, input, {
          strict: !!o.strict,
          onBadLine: (line, reason) => process.stderr.write(`line ${line}: ${reason}\n`),
        });
        await publisher.flush();
        process.stdout.write(
          `published ${r.published}, failed ${r.failed}${r.stopped ? ' (stopped at the first bad line: --strict)' : ''}\n`,
        );
        if (r.failed > 0) process.exitCode = 1;
      }),
    );
  program
    .command('tail')
    .description(
      "print a topic's records decoded as JSON lines (e.g. vigil tail alerts); dead letters and late records show why (vigil.* headers: reason, error, source topic/partition/offset, consumer)",
    )
    .argument('<topic>', 'topic key (alerts, scores, eeg, ..., dlq, late) or full topic name')
    .option('--from-beginning', 'replay the topic from its first offset first')
    .action(async (topic: string, o: { fromBeginning?: boolean }) => {
      const rt = await boot('tail');
      const { tail } = await import('./tail');
      const name = Object.hasOwn(rt.topics, topic) ? rt.topics[topic as keyof typeof rt.topics] : topic;
      const abort = new AbortController();
      rt.lifecycle.onClose('tail', () => abort.abort());
      await tail(
        rt.kafka,
        rt.serde,
        name,
        { fromBeginning: !!o.fromBeginning, write: (l) => process.stdout.write(`${l}\n`) },
        abort.signal,
      );
    });
  program
    .command('gateway')
    .description(
      'serve the HTTP ingest gateway: POST /v1/ingest/<stream> with a device key → Kafka. Refuses the whole request (nothing published) on: an event of another tenant or of a session another tenant owns (403, field tenant_id/session_id), a field outside its rule (400 with field and rule: schemas/rules.ts), a ts outside VIGIL_TS_MAX_AHEAD_MS/VIGIL_TS_MAX_AGE_MS of the gateway clock (400, field ts). Prometheus metrics at GET /metrics on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT (0 = off; docs/metrics.md)',
    )
    .action(async () => {
      const rt = await boot('gateway');
      const { startGatewayServer } = await import('./gateway/server');
      await startGatewayServer(rt);
      started(rt);
    });
}
