/**
 * `vigil project` (the projection worker), and analyst commands over the topics and the read models:
 * `vigil replay export` (decoded events of a time range to NDJSON/CSV), `vigil projections rebuild`
 * and `vigil projections list`. Heavy modules load inside the actions (telemetry starts first).
 */
import { Option, type Command } from 'commander';
import { boot, oneShot, timestamp } from '../core/command-line';

export function register(program: Command): void {
  program
    .command('project')
    .description(
      'run projection workers: Kafka topics → PostgreSQL read models (exactly once) and Redis (latest state, live sessions, active alerts, live feed); Prometheus metrics at GET /metrics on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT (0 = off; docs/metrics.md)',
    )
    .option('--models <names>', 'comma-separated read models (default: all)')
    .action(async (o: { models?: string }) => {
      const rt = await boot('project');
      const { startProjectionWorker } = await import('./worker');
      await startProjectionWorker(
        rt,
        o.models?.split(',').map((s) => s.trim()),
      );
    });

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
          const deps = { kafka: rt.kafka, serde: rt.serde, topics: rt.topics }; // before the closer (see rebuild)
          const abort = new AbortController();
          const out = o.out ? fs.createWriteStream(o.out) : process.stdout;
          // A reader that stops early (`| head`) is not an error: stop reading and exit quietly.
          let readerGone = false;
          out.on('error', (err: NodeJS.ErrnoException) => {
            if (err.code !== 'EPIPE') throw err;
            readerGone = true;
            abort.abort();
          });
          const t0 = performance.now();
          const exporting = exportEvents(deps, out, {
            topic: o.topic,
            from: o.from,
            to: o.to,
            session: o.session,
            format: o.format,
            signal: abort.signal,
          });
          rt.lifecycle.onClose('export', async () => {
            abort.abort();
            await exporting.catch(() => {});
          });
          const r = await exporting;
          if (o.out) {
            out.end();
            await finished(out);
          }
          const seconds = (performance.now() - t0) / 1000;
          process.stderr.write(
            `exported ${r.exported} events from ${r.partitions} partitions (${r.scanned} read, ${r.undecodable} undecodable) in ${seconds.toFixed(1)} s${r.aborted ? ': stopped early' : ''}\n`,
          );
          if (r.aborted && !readerGone) process.exitCode = 130;
        }),
    );

  const projections = program.command('projections').description('the PostgreSQL read models: positions and rebuilds');
  projections
    .command('list')
    .description(
      'print each read model with its checkpoint position, the end offset and the lag (end − checkpoint, summed over partitions) per topic',
    )
    .action(() =>
      oneShot('projections', async (rt) => {
        const { projectionPositions } = await import('./rebuild/positions');
        const rows = await projectionPositions({ kafka: rt.kafka, pool: rt.pool, topics: rt.topics });
        process.stdout.write('model\ttopic\tposition\tend\tlag\n');
        for (const r of rows) process.stdout.write(`${r.model}\t${r.topic}\t${r.position}\t${r.end}\t${r.lag}\n`);
      }),
    );
  projections
    .command('rebuild')
    .description(
      "rebuild a read model's PostgreSQL tables (and its columns of sessions) from its topics into a shadow schema, up to the live projection's checkpoint, then swap them in in one transaction while reads and the live projection go on (plain tables are swapped by rename; hypertables and tables a view depends on, e.g. fatigue_scores, by TRUNCATE + INSERT in that transaction). Refuses when Kafka no longer holds the history it would replay (see --allow-truncated). Progress on stderr; events/s at the end.",
    )
    .argument('<name>', 'read model: sessions, eeg, face, vehicle, game, scores, alerts, scores-whatif')
    .addOption(
      new Option(
        '--from <time>',
        'keep the live rows with event time before this (ISO-8601) and replay only from it (from offsets-for-times minus 60 s)',
      ).argParser(timestamp),
    )
    .option(
      '--allow-truncated',
      'rebuild even when Kafka no longer holds the whole history (a partition whose log start offset is above 0, or above the first offset at --from): the rows of the deleted records are lost for every tenant. Without it such a rebuild stops before touching anything (HISTORY_TRUNCATED, naming the partitions and how many records would be lost)',
    )
    .action((name: string, o: { from?: number; allowTruncated?: boolean }) =>
      oneShot('rebuild', async (rt) => {
        const { rebuildProjection } = await import('./rebuild/rebuild');
        await rt.serde.register([]); // decoding fetches writer schemas by id on first sight
        // Clients first: closers run in reverse order, so on SIGINT/SIGTERM the rebuild is stopped and
        // has dropped its shadow schema before the pool and Kafka client close.
        const deps = {
          kafka: rt.kafka,
          pool: rt.pool,
          serde: rt.serde,
          topics: rt.topics,
          log: rt.log,
          tsWindow: rt.config.tsWindow,
        };
        const abort = new AbortController();
        let shown = 0;
        const rebuilding = rebuildProjection(deps, name, {
          from: o.from,
          allowTruncated: !!o.allowTruncated,
          signal: abort.signal,
          onProgress: (p) => {
            const now = Date.now();
            if (p.phase === 'replay' || p.phase === 'catch-up') {
              if (now - shown < 1000) return;
            }
            shown = now;
            process.stderr.write(
              `${name}: ${p.phase}, ${p.applied} events applied${p.planned ? `, ${p.planned} offsets to go` : ''}\n`,
            );
          },
        });
        rt.lifecycle.onClose('rebuild', async () => {
          abort.abort();
          await rebuilding.catch(() => {});
        });
        const r = await rebuilding;
        process.stderr.write(
          `rebuilt ${r.model}: ${r.applied} events in ${r.seconds.toFixed(1)} s (${r.eventsPerSecond} events/s), ${r.undecodable} undecodable, ${r.refused} refused (rule table, ts window, another tenant's session) and ${r.dataErrors} with a data error skipped, as the live runner dead-lettered them; swapped ${Object.entries(
            r.swapped,
          )
            .map(([t, how]) => `${t} by ${how}`)
            .join(', ')}\n`,
        );
      }),
    );
}
