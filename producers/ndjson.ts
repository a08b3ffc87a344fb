import { describeViolations, violationsOf } from '../schemas/rules';
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import type { AvroSerde } from '../core/serde';
import type { TopicKey, ValueOf } from '../schemas/catalogue';
import type { Publisher } from './publisher';

/**
 * `vigil publish`: streams NDJSON lines (one catalogue event per line) to a topic. Each line is
 * parsed and validated on its own; a bad line is reported with its number and reason and counted,
 * the good lines still go (unless `strict`, which stops at the first bad line before publishing
 * anything after it). Memory stays bounded: lines are read as a stream and at most a few chunks are
 * outstanding at once (the publisher adds its own backpressure).
 */
interface NdjsonResult {
  published: number;
  failed: number;
  /** True when `strict` stopped the run at a bad line. */
  stopped: boolean;
}

const CHUNK = 500;
const MAX_OUTSTANDING = 8;

export async function publishNdjson<K extends TopicKey>(
  publisher: Publisher,
  serde: AvroSerde,
  key: K,
  input: Readable,
  opts: { strict: boolean; onBadLine: (line: number, reason: string) => void },
): Promise<NdjsonResult> {
  const result: NdjsonResult = { published: 0, failed: 0, stopped: false };
  const outstanding = new Set<Promise<void>>();
  let chunk: ValueOf<K>[] = [];
  const send = async () => {
    if (chunk.length === 0) return;
    const events = chunk;
    chunk = [];
    const p = publisher.publish(key, events).then(() => {
      result.published += events.length;
    });
    outstanding.add(p);
    void p.finally(() => outstanding.delete(p)).catch(() => {});
    if (outstanding.size >= MAX_OUTSTANDING) await Promise.race(outstanding);
  };

  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    const reason = problemOf(serde, key, line);
    if (reason) {
      result.failed++;
      opts.onBadLine(n, reason);
      if (opts.strict) {
        result.stopped = true;
        break;
      }
      continue;
    }
    chunk.push(JSON.parse(line) as ValueOf<K>);
    if (chunk.length >= CHUNK) await send();
  }
  lines.close();
  await send();
  await Promise.all(outstanding);
  return result;
}

function problemOf(serde: AvroSerde, key: TopicKey, line: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  const problems = serde.validate(key, value);
  if (problems.length) return problems.join('; ');
  // The rule table (physical ranges, formats): what the processors would dead-letter.
  const broken = violationsOf(key, value);
  return broken.length ? describeViolations(broken) : undefined;
}
