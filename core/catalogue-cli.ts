/**
 * Commands that set up the catalogue (schemas/) in Kafka and the registry: `vigil topics ensure` and
 * `vigil schemas register`. Here and not in schemas/, which is the contract and imports nothing of
 * the rest of Vigil. Heavy modules load inside the actions (telemetry starts first).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { oneShot } from './command-line';

export function register(program: Command): void {
  program
    .command('topics')
    .description(
      'create every topic of the catalogue (idempotent; same partition count for all); the source-of-truth topics get retention.ms = VIGIL_TOPIC_RETENTION_MS (default -1: kept forever), also set on topics that exist already',
    )
    .argument('<action>', 'ensure')
    .action((action: string) =>
      oneShot('topics', async (rt) => {
        if (action !== 'ensure') throw new InvalidArgumentError(`unknown action ${action}; use ensure`);
        const { ensureTopics } = await import('./kafka');
        const { topicPlan } = await import('../schemas/topics');
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
        const { topicKeys } = await import('../schemas/catalogue');
        await rt.serde.register(topicKeys);
        rt.log.info(
          { subjects: topicKeys.map((k) => `${rt.topics[k]}-value = ${rt.serde.schemaIdOf(k)}`) },
          'schemas registered',
        );
      }),
    );
  program
    .command('kafka-acls')
    .description(
      "the per-role ACLs of a secured cluster (docs/managed-kafka.md): 'print' writes them as kafka-acls.sh commands, 'apply' creates them with the admin API as the configured SASL user (idempotent)",
    )
    .argument('<action>', 'print or apply')
    .action((action: string) =>
      oneShot('kafka-acls', async (rt) => {
        if (action !== 'print' && action !== 'apply')
          throw new InvalidArgumentError(`unknown action ${action}; use print or apply`);
        const { aclPlan, aclCommands, applyAcls } = await import('./kafka-acls');
        const rules = aclPlan(rt.config.topicPrefix);
        if (action === 'print') {
          process.stdout.write(`${aclCommands(rules, rt.config.kafka.brokers.join(',')).join('\n')}\n`);
          return;
        }
        const admin = rt.kafka.admin();
        await admin.connect();
        try {
          const n = await applyAcls(admin, rules);
          rt.log.info({ acls: n, prefix: rt.config.topicPrefix }, `applied ${n} ACLs`);
        } finally {
          await admin.disconnect();
        }
      }),
    );
}
