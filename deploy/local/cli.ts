/**
 * Commands of the local stack: `vigil stack up|down|status`. Heavy modules load inside the actions
 * (telemetry starts first).
 */
import { type Command } from 'commander';

export function register(program: Command): void {
  program
    .command('stack')
    .description('the local no-Docker stack: Kafka (KRaft), Apicurio Registry, Zipkin, PostgreSQL, Redis')
    .argument('<action>', 'up | down | status')
    .action(async (action: string) => {
      const { runStackScript } = await import('./stack');
      process.exit(await runStackScript(action));
    });
}
