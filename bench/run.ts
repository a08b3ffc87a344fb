/**
 * `npm run bench -- <scenario>`: runs one benchmark against the stack the VIGIL_* variables point at
 * (start it with `npm run stack:up`) and writes bench/results/<scenario>.json and .md.
 */
import { serdeBench } from './serde';
import { producerBench } from './producer';
import { processorBench } from './processor';
import { exitOnError } from './lib';

const scenarios: Record<string, () => Promise<void>> = {
  serde: serdeBench,
  producer: producerBench,
  processor: () => processorBench(process.argv.slice(3)),
  gateway: () => import('./gateway').then((m) => m.gatewayBench()),
  e2e: () => import('./e2e').then((m) => m.e2eBench(process.argv.slice(3))),
  projection: () => import('./projection').then((m) => m.projectionBench(process.argv.slice(3))),
  api: () => import('./api').then((m) => m.apiBench(process.argv.slice(3))),
  'kafka-client': () => import('./kafka-client').then((m) => m.kafkaClientBench(process.argv.slice(3))),
  'pg-row': () => import('./pg-row').then((m) => m.pgRowBench(process.argv.slice(3))),
  'txn-burst': () => import('./txn-burst').then((m) => m.txnBurstBench(process.argv.slice(3))),
  ui: () => import('./ui').then((m) => m.uiBench(process.argv.slice(3))),
};

async function main() {
  const name = process.argv[2];
  const run = name ? scenarios[name] : undefined;
  if (!run) {
    process.stderr.write(`usage: npm run bench -- <scenario>\nscenarios: ${Object.keys(scenarios).join(', ')}\n`);
    process.exit(2);
  }
  await run();
  process.exit(0);
}

main().catch(exitOnError);
