#!/usr/bin/env node
/**
 * `vigil`: one command line for every role. Reads and validates the configuration once, starts
 * OpenTelemetry, and only then loads the role's modules (so kafkajs, pg, ioredis and express are
 * instrumented). Nothing below this file reads process.env.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { isVigilError } from './core/errors';
import { boot, configOrExit, duration, oneShot, positiveInt, timestamp } from './core/cli';

const program = new Command('vigil')
  .description(
    'Vigil: fatigue monitoring pipeline (Kafka → processors → TimescaleDB/Redis → API).\nConfiguration comes from VIGIL_* environment variables; see README.md.',
  )
  .showHelpAfterError();

program
  .command('stack')
  .description('the local no-Docker stack: Kafka (KRaft), Apicurio Registry, Zipkin, PostgreSQL, Redis')
  .argument('<action>', 'up | down | status')
  .action(async (action: string) => {
    const { runStackScript } = await import('./deploy/local/stack');
    process.exit(await runStackScript(action));
  });

program
  .command('migrate')
  .description('apply the SQL migrations in migrations/ (TimescaleDB path when the extension is offered)')
  .option('--down', 'roll back instead of applying')
  .addOption(new Option('--count <n>', 'how many migrations (default: all up, one down)').argParser(positiveInt))
  .action((o: { down?: boolean; count?: number }) =>
    oneShot('migrate', async (rt) => {
      const { migrate } = await import('./core/migrate');
      const names = await migrate({
        database: rt.config.database.url,
        direction: o.down ? 'down' : 'up',
        count: o.count ?? (o.down ? 1 : Infinity),
        log: rt.log,
      });
      rt.log.info(
        { migrations: names },
        names.length ? `${o.down ? 'rolled back' : 'applied'} ${names.length}` : 'up to date',
      );
    }),
  );

program
  .command('topics')
  .description(
    'create every topic of the catalogue (idempotent; same partition count for all); the source-of-truth topics get retention.ms = VIGIL_TOPIC_RETENTION_MS (default -1: kept forever), also set on topics that exist already',
  )
  .argument('<action>', 'ensure')
  .action((action: string) =>
    oneShot('topics', async (rt) => {
      if (action !== 'ensure') throw new InvalidArgumentError(`unknown action ${action}; use ensure`);
      const { ensureTopics } = await import('./core/kafka');
      const { topicPlan } = await import('./schemas/topics');
      const admin = rt.kafka.admin();
      await admin.connect();
      try {
        const created = await ensureTopics(admin, topicPlan(rt.config));
        rt.log.info({ created }, created.length ? `created ${created.length} topics` : 'all topics exist');
      } finally {
        await admin.disconnect();
      }
    }),
  );

program
  .command('schemas')
  .description('register every value schema with the registry and set BACKWARD_TRANSITIVE (idempotent)')
  .argument('<action>', 'register')
  .action((action: string) =>
    oneShot('schemas', async (rt) => {
      if (action !== 'register') throw new InvalidArgumentError(`unknown action ${action}; use register`);
      const { topicKeys } = await import('./schemas/catalogue');
      await rt.serde.register(topicKeys);
      rt.log.info(
        { subjects: topicKeys.map((k) => `${rt.topics[k]}-value = ${rt.serde.schemaIdOf(k)}`) },
        'schemas registered',
      );
    }),
  );

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
    new Option('--modalities <list>', 'telemetry to publish, comma-separated: eeg,face,vehicle,game (sessions always)')
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
  .option('--digest', 'publish nothing: print a SHA-256 over the JSON of all generated events and the count per topic')
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
        const { digestSimulation } = await import('./producers/simulator/run');
        const d = digestSimulation(opts);
        process.stdout.write(`${JSON.stringify({ ...d, start: new Date(opts.startTs).toISOString() })}\n`);
        if (o.start === undefined)
          process.stderr.write('vigil: no --start, so event times (and the digest) follow the clock\n');
        return;
      }
      await oneShot('simulate', async (rt) => {
        const { simulate } = await import('./producers/simulate');
        const { sessionIdOf } = await import('./producers/simulator/session');
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
      const { topicKeys } = await import('./schemas/catalogue');
      const { Publisher } = await import('./producers/publisher');
      const { publishNdjson } = await import('./producers/ndjson');
      const key = topicKeys.find((k) => k === o.topic || rt.topics[k] === o.topic);
      if (!key) throw new InvalidArgumentError(`unknown topic ${o.topic}; use one of ${topicKeys.join(', ')}`);
      await rt.serde.register([key]);
      const publisher = new Publisher(rt.kafka, rt.serde, rt.topics);
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
  .command('process')
  .description(
    'run the fatigue processor: telemetry → scores and alerts, exactly once (several instances share partitions)',
  )
  .action(async () => {
    const rt = await boot('process');
    const { startFatigueWorker } = await import('./processors/worker');
    await startFatigueWorker(rt);
  });

program
  .command('tail')
  .description(
    "print a topic's records decoded as JSON lines (e.g. vigil tail alerts); dead letters and late records show why (vigil.* headers: reason, error, source topic/partition/offset, consumer)",
  )
  .argument('<topic>', 'topic key (alerts, scores, eeg, ..., dlq, late) or full topic name')
  .option('--from-beginning', 'replay the topic from its first offset first')
  .action(async (topic: string, o: { fromBeginning?: boolean }) => {
    const rt = await boot('tail');
    const { tail } = await import('./producers/tail');
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
  .command('project')
  .description(
    'run projection workers: Kafka topics → PostgreSQL read models (exactly once) and Redis (latest state, live sessions, active alerts, live feed)',
  )
  .option('--models <names>', 'comma-separated read models (default: all)')
  .action(async (o: { models?: string }) => {
    const rt = await boot('project');
    const { startProjectionWorker } = await import('./projections/worker');
    await startProjectionWorker(
      rt,
      o.models?.split(',').map((s) => s.trim()),
    );
  });

program
  .command('api')
  .description(
    'serve the query API: /v1 reads of sessions, scores, alerts, reports and exports, the live feed (SSE) and playback of a session, alert acknowledgements (→ commands topic), admin export jobs (API key of role reader or admin, filtered by its tenant, rate-limited per key and, before authentication, per client address); rebuilds, all-tenant admin actions and the full /health report need an operator key; /health/ready (cached about 1 s), /metrics, OpenAPI at /docs',
  )
  .action(async () => {
    const rt = await boot('api');
    const { startApiServer } = await import('./api/server');
    await startApiServer(rt);
  });

program
  .command('gateway')
  .description(
    'serve the HTTP ingest gateway: POST /v1/ingest/<stream> with a device key → Kafka. Refuses the whole request (nothing published) on: an event of another tenant or of a session another tenant owns (403, field tenant_id/session_id), a field outside its rule (400 with field and rule: schemas/rules.ts), a ts outside VIGIL_TS_MAX_AHEAD_MS/VIGIL_TS_MAX_AGE_MS of the gateway clock (400, field ts)',
  )
  .action(async () => {
    const rt = await boot('gateway');
    const { startGatewayServer } = await import('./producers/gateway/server');
    await startGatewayServer(rt);
  });

const keys = program
  .command('keys')
  .description('API keys: each maps to one tenant and one role; operator keys belong to no tenant');
keys
  .command('create')
  .description(
    "create a key (and its tenant when missing); prints the key, which is shown only once. Roles: device ingests, reader reads its tenant, admin also enqueues its tenant's exports and invalidates its cache; operator (no --tenant) runs rebuilds and every all-tenant action (admin jobs of any tenant, every tenant's cache, the full /health report) and reads no tenant data",
  )
  .option('--tenant <id>', 'tenant id (required for every role but operator, which has none)')
  .addOption(
    new Option('--role <role>', 'what the key may do')
      .choices(['reader', 'admin', 'device', 'operator'])
      .makeOptionMandatory(),
  )
  .option('--label <text>', 'free text to recognise the key by, e.g. the device or person holding it')
  .action((o: { tenant?: string; role: 'reader' | 'admin' | 'device' | 'operator'; label?: string }) => {
    if (o.role === 'operator' && o.tenant !== undefined)
      throw new InvalidArgumentError('an operator key belongs to no tenant: leave out --tenant');
    if (o.role !== 'operator' && o.tenant === undefined)
      throw new InvalidArgumentError(`a ${o.role} key needs --tenant <id>`);
    return oneShot('keys', async (rt) => {
      const { createApiKey } = await import('./core/api-keys');
      const k = await createApiKey(rt.pool, { tenantId: o.tenant, role: o.role, label: o.label });
      process.stdout.write(`${k.key}\n`);
      rt.log.info({ key_id: k.keyId, tenant: k.tenantId, role: k.role }, 'api key created');
    });
  });
keys
  .command('revoke')
  .description('revoke a key by its id (the 12 characters after vgl_); other processes refuse it within the cache TTL')
  .argument('<key_id>')
  .action((keyId: string) =>
    oneShot('keys', async (rt) => {
      const { revokeApiKey } = await import('./core/api-keys');
      const revoked = await revokeApiKey(rt.pool, keyId);
      rt.log.info({ key_id: keyId }, revoked ? 'api key revoked' : 'no active key with that id');
      if (!revoked) process.exitCode = 1;
    }),
  );
keys
  .command('list')
  .description('list keys (without secrets), newest first')
  .option('--tenant <id>', 'only this tenant')
  .action((o: { tenant?: string }) =>
    oneShot('keys', async (rt) => {
      const { listApiKeys } = await import('./core/api-keys');
      for (const k of await listApiKeys(rt.pool, o.tenant)) {
        const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active';
        process.stdout.write(`${k.keyId}\t${k.tenantId}\t${k.role}\t${state}\t${k.label ?? ''}\n`);
      }
    }),
  );

program
  .command('demo')
  .description(
    'what `npm start` runs: stack up, migrate, topics, schemas, fatigue processor, projection worker, API, jobs worker and simulator',
  )
  .addOption(new Option('--sessions <n>', 'simulated sessions').argParser(positiveInt).default(5))
  .addOption(
    new Option('--duration <d>', 'length of each simulated session').argParser(duration).default(600_000, '10m'),
  )
  .option('--no-stack', 'do not start the local stack (use what the VIGIL_* variables point at)')
  .action(async (o: { sessions: number; duration: number; stack: boolean }) => {
    const config = configOrExit();
    const { runDemo } = await import('./deploy/local/demo');
    process.exit(
      await runDemo({
        sessions: o.sessions,
        durationMs: o.duration,
        startStack: o.stack,
        api: config.api,
        env: process.env,
      }),
    );
  });

import { register as registerProjectionTools } from './projections/commands';
registerProjectionTools(program);
import { register as registerJobs } from './projections/jobs/commands';
registerJobs(program);
import { register as registerProcessorTools } from './processors/commands';
registerProcessorTools(program);

program.parseAsync().catch((err: unknown) => {
  if (isVigilError(err)) process.stderr.write(`vigil: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`vigil: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
