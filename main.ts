#!/usr/bin/env node
/**
 * `vigil`: one command line for every role. Reads and validates the configuration once, starts
 * OpenTelemetry, and only then loads the role's modules (so kafkajs, pg, ioredis and express are
 * instrumented). Nothing below this file reads process.env.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { isVigilError } from './core/errors';
import { configOrExit, duration, positiveInt } from './core/command-line';
import { register as registerStack } from './deploy/local/cli';
import { register as registerDatabase } from './core/database-cli';
import { register as registerCatalogue } from './core/catalogue-cli';
import { register as registerProducers } from './producers/cli';
import { register as registerProcessors } from './processors/cli';
import { register as registerProjections } from './projections/cli';
import { register as registerJobs } from './jobs/cli';
import { register as registerApi } from './api/cli';
import { repoRoot } from './core/paths';

/** The version of package.json (copied into the image beside dist/, see Dockerfile). */
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string })
  .version;

const program = new Command('vigil')
  .description(
    'Vigil: fatigue monitoring pipeline (Kafka → processors → TimescaleDB/Redis → API).\nConfiguration comes from VIGIL_* environment variables; see README.md.',
  )
  .version(version, '-v, --version', 'print the version of Vigil (package.json) and exit')
  .showHelpAfterError();

// Each area registers its own commands, in the order --help lists them.
for (const register of [
  registerStack,
  registerDatabase,
  registerCatalogue,
  registerProducers,
  registerProcessors,
  registerProjections,
  registerApi,
  registerJobs,
])
  register(program);

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
        gateway: config.gateway,
        env: process.env,
      }),
    );
  });

program.parseAsync().catch((err: unknown) => {
  if (isVigilError(err)) process.stderr.write(`vigil: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`vigil: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
