import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { execSync } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { repoRoot } from '../core/paths';

/** Shared helpers of the benchmark scenarios: spread statistics, machine facts, result files, a span sink. */

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function spread(runs: number[]): Spread {
  const s = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: round(median), min: round(s[0]!), max: round(s.at(-1)!), runs: runs.map(round) };
}

export const round = (n: number, digits = 3) => Number(n.toPrecision(digits + 3 > 15 ? 15 : digits + 3));

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * A quiet kafkajs client for a bench's own topics and producers, with patient retries: on a busy
 * 2-core box a new topic's leaders can take several seconds.
 */
export function patientKafka(clientId: string, brokers: string[]): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, retry: { initialRetryTime: 300, retries: 12 } });
}

/** Peak resident set size of this process so far, MiB. */
export const peakRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

export function machine() {
  const version = (cmd: string) => {
    try {
      return execSync(cmd, { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim()
        .split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kafka: 'Apache Kafka 4.1.1 (KRaft, single node, deploy/local)',
    java: version('java -version 2>&1'),
    loadavg_at_start: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Writes bench/results/<scenario>.json and .md (the markdown is the short human table). */
export function writeResults(scenario: string, json: object, markdown: string): void {
  const target = path.join(repoRoot(), 'bench', 'results');
  fs.mkdirSync(target, { recursive: true });
  const when = new Date().toISOString();
  fs.writeFileSync(
    path.join(target, `${scenario}.json`),
    JSON.stringify({ scenario, when, machine: machine(), ...json }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(target, `${scenario}.md`), `# ${scenario} (${when})\n\n${markdown}\n`);
  process.stdout.write(`${markdown}\n\nwritten: ${path.join(target, `${scenario}.json`)} and .md\n`);
}

export const table = (head: string[], rows: (string | number)[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join(
    '\n',
  );

/**
 * Request handler of a Zipkin-compatible sink (POST /api/v2/spans, 202): counts the spans of each body
 * by their `"traceId"` fields, without parsing, hands the count to `add` and keeps nothing.
 */
export function countSpans(add: (spans: number) => void): http.RequestListener {
  const needle = Buffer.from('"traceId"');
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let spans = 0;
      for (let i = body.indexOf(needle); i >= 0; i = body.indexOf(needle, i + needle.length)) spans++;
      add(spans);
      res.writeHead(202).end();
    });
  };
}

/** Last resort of a bench script's `main()`: the error's stack on stderr, exit code 1. */
export function exitOnError(err: unknown): never {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
