/**
 * Processor commands: `vigil process` (the fatigue processor) and, for analysts, `vigil rescore`
 * (another fatigue model over history, into the what-if topics, with a comparison against the live
 * scores). Heavy modules load inside the actions (telemetry starts first).
 */
import { Option, type Command } from 'commander';
import { boot, oneShot, timestamp } from '../core/command-line';
import { VigilError } from '../core/errors';
import { SessionOwners } from '../core/session-owners';
import { modelByName, modelVersions } from './fatigue/models';

export function register(program: Command): void {
  program
    .command('process')
    .description(
      'run the fatigue processor: telemetry → scores and alerts, exactly once (several instances share partitions); Prometheus metrics at GET /metrics on VIGIL_METRICS_HOST:VIGIL_METRICS_PORT (0 = off; docs/metrics.md)',
    )
    .action(async () => {
      const rt = await boot('process');
      const { startFatigueWorker } = await import('./worker');
      await startFatigueWorker(rt);
    });

  program
    .command('rescore')
    .description(
      'replay the fatigue processor inputs (telemetry, sessions, commands) whose event time ts is in [--from, --to) through the fatigue model --model, read from offsets-for-times of --from (minus 60 s of clock margin) to the end offsets at the start; write the resulting scores and alerts to the what-if topics (fatigue.scores.whatif.v1, fatigue.alerts.whatif.v1; transactional, deterministic ids: a rerun writes the same bytes) and print per session the what-if model beside the live scores and alerts of the same range (windows, mean, max, level, alerts raised). `vigil project` puts what-if scores in fatigue_scores_whatif.',
    )
    .addOption(
      new Option('--from <time>', 'first event time, inclusive (ISO-8601)').argParser(timestamp).makeOptionMandatory(),
    )
    .addOption(
      new Option('--to <time>', 'end event time, exclusive (ISO-8601)').argParser(timestamp).makeOptionMandatory(),
    )
    .requiredOption('--model <version>', `fatigue model version: ${modelVersions().join(', ')}`)
    .option('--session <id>', 'only this session (reads only its partition)')
    .option('--json', 'print the result and the comparison as one JSON document instead of the table')
    .action((o: { from: number; to: number; model: string; session?: string; json?: boolean }) => {
      // Refused before anything starts: an unknown model (MODEL_UNKNOWN lists the known ones), an empty range.
      modelByName(o.model);
      if (!(o.from < o.to)) throw new VigilError('REQUEST_INVALID', '--from must be before --to');
      return oneShot('rescore', async (rt) => {
        const { rescore } = await import('./rescore/rescore');
        const { formatComparison } = await import('./rescore/summary');
        const { ensureTopics } = await import('../core/kafka');
        const { topicPlan } = await import('../schemas/topics');
        // The what-if topics with the catalogue's partitioning, so a session lands in the same partition.
        const plan = topicPlan(rt.config);
        const admin = rt.kafka.admin();
        await admin.connect();
        try {
          await ensureTopics(admin, {
            [rt.topics.scoresWhatIf]: plan[rt.topics.scoresWhatIf]!,
            [rt.topics.alertsWhatIf]: plan[rt.topics.alertsWhatIf]!,
          });
        } finally {
          await admin.disconnect();
        }
        const abort = new AbortController();
        rt.lifecycle.onClose('rescore', () => abort.abort());
        const r = await rescore(
          {
            kafka: rt.kafka,
            serde: rt.serde,
            topics: rt.topics,
            log: rt.log,
            idPrefix: rt.config.topicPrefix,
            tsWindow: rt.config.tsWindow,
            owners: new SessionOwners(rt.pool),
          },
          { from: o.from, to: o.to, model: o.model, session: o.session, signal: abort.signal },
        );
        if (o.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
        } else {
          process.stdout.write(
            `rescored ${new Date(r.from).toISOString()} .. ${new Date(r.to).toISOString()} with ${r.model}: ` +
              `${r.kept} of ${r.read} input events in range (${r.late} late, ${r.duplicates} resent copies, ${r.undecodable} undecodable, ${r.refused} refused, ${r.tenantMismatch} of another tenant) → ` +
              `${r.produced.scores} scores to ${r.topics.scores}, ${r.produced.alerts} alert events to ${r.topics.alerts} ` +
              `in ${r.transactions} transactions, ${r.seconds.toFixed(1)} s${r.aborted ? ': stopped early' : ''}\n\n`,
          );
          process.stdout.write(
            r.comparison.length ? `${formatComparison(r.comparison)}\n` : 'no sessions in the range\n',
          );
        }
        if (r.aborted) process.exitCode = 130;
      });
    });
}
