/**
 * Analyst commands over the topics and the read models: `vigil replay export` (decoded events of a
 * time range to NDJSON/CSV), `vigil projections rebuild` and `vigil projections list`. Heavy modules
 * load inside the actions (telemetry starts first).
 */
import { Option, type Command } from 'commander';
import { oneShot, timestamp } from '../core/cli';

export function register(program: Command): void {
  const replay = program.command('replay').description('read topics back for analysis');
  replay
    .command('export')
    .description(
      'write the decoded events of a topic whose event time ts is in [--from, --to) as NDJSON (the lines vigil tail prints) or CSV (header row; nested fields as JSON text). Reads each partition from offsets-for-times of --from (minus 60 s of clock margin) to its end offset at the start, so it terminates; --session reads only the partition holding that key. Prints "exported N events from M partitions" on stderr.',
    )
    .requiredOption(
      '--topic <topic>',
      'catalogue topic: a key (sessions, eeg, face, vehicle, game, scores, alerts, commands) or its full name',
    )
    .addOption(new Option('--from <time>', 'first event time, inclusive (ISO-8601)').argParser(timestamp))
    .addOption(new Option('--to <time>', 'end event time, exclusive (ISO-8601)').argParser(timestamp))
    .option('--session <id>', 'only this session')
    .addOption(new Option('--format <format>', 'output format').choices(['ndjson', 'csv']).default('ndjson'))
    .option('--out <file>', 'write to this file instead of standard output')
    .action(
      (o: { topic: string; from?: number; to?: number; session?: string; format: 'ndjson' | 'csv'; out?: string }) =>
        oneShot('replay', async (rt) => {
          const fs = await import('node:fs');
          const { finished } = await import('node:stream/promises');
          const { exportEvents } = await import('./replay/export');
          await rt.serde.register([]); // decoding fetches writer schemas by id on first sight
          const abort = new AbortController();
          rt.lifecycle.onClose('export', () => abort.abort());
          const out = o.out ? fs.createWriteStream(o.out) : process.stdout;
          const t0 = performance.now();
          const r = await exportEvents({ kafka: rt.kafka, serde: rt.serde, topics: rt.topics }, out, {
            topic: o.topic,
            from: o.from,
            to: o.to,
            session: o.session,
            format: o.format,
            signal: abort.signal,
          });
          if (o.out) {
            out.end();
            await finished(out);
          }
          const seconds = (performance.now() - t0) / 1000;
          process.stderr.write(
            `exported ${r.exported} events from ${r.partitions} partitions (${r.scanned} read, ${r.undecodable} undecodable) in ${seconds.toFixed(1)} s${r.aborted ? ': stopped early' : ''}\n`,
          );
          if (r.aborted) process.exitCode = 130;
        }),
    );
}
