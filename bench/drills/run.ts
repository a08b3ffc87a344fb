/**
 * `npm run drill -- <name> [--sessions n] [--seconds s] [--partitions n] [--down-seconds s] [--log-level l] [--short]`:
 * runs one failure drill (or `all`) against the stack the VIGIL_* variables point at and writes
 * bench/results/drill-<name>.json and .md. Exit 0 only when every drill passed its audit.
 */
import { exitOnError, table, writeResults } from '../lib';
import { defaultDrill, drillNames, runDrill, shortDrill, type DrillOptions, type DrillResult } from './drills';

function parse(argv: string[]): { names: string[]; o: DrillOptions; short: boolean } {
  const names: string[] = [];
  let o: DrillOptions = { ...defaultDrill };
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--short') o = { ...shortDrill };
    else if (a === '--sessions') o.sessions = num(a, argv[++i]);
    else if (a === '--seconds') o.seconds = num(a, argv[++i]);
    else if (a === '--partitions') o.partitions = num(a, argv[++i]);
    else if (a === '--down-seconds') o.downSeconds = num(a, argv[++i]);
    else if (a === '--drain-timeout') o.drainTimeoutSeconds = num(a, argv[++i]);
    else if (a === '--log-level') o.logLevel = argv[++i];
    else names.push(a);
  }
  return { names: names.includes('all') ? drillNames : names, o, short: argv.includes('--short') };
}

/** The observations without the workers' output tails (kept in the JSON only). */
const observed = (r: DrillResult) => {
  const o = Object.fromEntries(Object.entries(r.observations).filter(([k]) => !k.endsWith('_output_tail')));
  return Object.keys(o).length ? JSON.stringify(o) : '';
};

export function drillMarkdown(r: DrillResult): string {
  return [
    `**${r.drill}**: ${r.ok ? 'passed' : '**failed**'} in ${r.seconds} s; ${r.options.sessions} sessions x ${r.options.seconds} s real time, ${r.options.partitions} partitions. ` +
      `Lost ${r.audit.lost}, duplicated ${r.audit.duplicated}; input events ${JSON.stringify(r.audit.input_events)}, poison records ${r.audit.poison_records}, drained ${r.drain_ms} ms after the load.`,
    '',
    `Timeline: ${r.timeline.map((x) => `+${x.t}s ${x.what}`).join('; ')}.`,
    '',
    observed(r) ? `Observations: \`${observed(r)}\`` : '',
    r.observations.processor_output_tail || r.observations.projector_output_tail
      ? 'Not drained in time: the last output of the processor and the projection worker is in the JSON (`*_output_tail`).'
      : '',
    r.crashes.length
      ? `Roles that exited on their own (restarted after 1 s by the drill's supervisor): ${r.crashes.map((c) => `${c.role} (exit ${c.code})`).join(', ')}.`
      : 'No role exited on its own.',
    '',
    table(
      ['audit check', 'expected', 'actual', 'lost', 'duplicated', 'ok'],
      r.audit.checks.map((c) => [
        c.name,
        c.expected,
        c.actual,
        c.lost,
        c.duplicated,
        c.ok ? 'yes' : `**no**${c.note ? ` (${c.note})` : ''}`,
      ]),
    ),
  ].join('\n');
}

async function main() {
  const { names, o, short } = parse(process.argv.slice(2));
  const unknown = names.filter((n) => !drillNames.includes(n));
  if (!names.length || unknown.length) {
    process.stderr.write(
      `usage: npm run drill -- <name|all> [--short] [--sessions n] [--seconds s] [--partitions n] [--down-seconds s] [--drain-timeout s] [--log-level info]\ndrills: ${drillNames.join(', ')}\n`,
    );
    process.exit(2);
  }
  let failed = 0;
  for (const name of names) {
    const r = await runDrill(name, o, (s) => process.stdout.write(`${s}\n`));
    if (!r.ok) failed++;
    // A short run has a file of its own: it must not replace the full run's result.
    writeResults(`drill-${name}${short ? '-short' : ''}`, r, drillMarkdown(r));
  }
  process.exit(failed ? 1 : 0);
}

if (require.main === module) {
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
  main().catch(exitOnError);
}
