/**
 * Commands over the database itself: `vigil migrate` and `vigil keys create|revoke|list`. Heavy
 * modules load inside the actions (telemetry starts first).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { oneShot, positiveInt } from './command-line';

export function register(program: Command): void {
  program
    .command('migrate')
    .description(
      'apply the SQL migrations in migrations/ (TimescaleDB path when the server can create the extension: installed and preloaded; VIGIL_TIMESCALEDB)',
    )
    .option('--down', 'roll back instead of applying')
    .addOption(new Option('--count <n>', 'how many migrations (default: all up, one down)').argParser(positiveInt))
    .action((o: { down?: boolean; count?: number }) =>
      oneShot('migrate', async (rt) => {
        const { migrate } = await import('./migrate');
        const names = await migrate({
          database: rt.config.database.url,
          direction: o.down ? 'down' : 'up',
          count: o.count ?? (o.down ? 1 : Infinity),
          log: rt.log,
          timescaledb: rt.config.timescaledb,
        });
        rt.log.info(
          { migrations: names },
          names.length ? `${o.down ? 'rolled back' : 'applied'} ${names.length}` : 'up to date',
        );
      }),
    );
  const keys = program
    .command('keys')
    .description('API keys: each maps to one tenant and one role; operator keys belong to no tenant');
  keys
    .command('create')
    .description(
      "create a key (and its tenant when missing); prints the key, which is shown only once. Roles: device ingests, reader reads its tenant, admin also enqueues its tenant's exports and invalidates its cache; operator (no --tenant) runs rebuilds and every all-tenant action (admin jobs of any tenant, every tenant's cache, the full /health report) and reads no tenant data",
    )
    .option('--tenant <id>', 'tenant id (required for every role but operator, which has none)')
    .addOption(
      new Option('--role <role>', 'what the key may do')
        .choices(['reader', 'admin', 'device', 'operator'])
        .makeOptionMandatory(),
    )
    .option('--label <text>', 'free text to recognise the key by, e.g. the device or person holding it')
    .action((o: { tenant?: string; role: 'reader' | 'admin' | 'device' | 'operator'; label?: string }) => {
      if (o.role === 'operator' && o.tenant !== undefined)
        throw new InvalidArgumentError('an operator key belongs to no tenant: leave out --tenant');
      if (o.role !== 'operator' && o.tenant === undefined)
        throw new InvalidArgumentError(`a ${o.role} key needs --tenant <id>`);
      return oneShot('keys', async (rt) => {
        const { createApiKey } = await import('./api-keys');
        const k = await createApiKey(rt.pool, { tenantId: o.tenant, role: o.role, label: o.label });
        process.stdout.write(`${k.key}\n`);
        rt.log.info({ key_id: k.keyId, tenant: k.tenantId, role: k.role }, 'api key created');
      });
    });
  keys
    .command('revoke')
    .description(
      'revoke a key by its id (the 12 characters after vgl_); other processes refuse it within the cache TTL',
    )
    .argument('<key_id>')
    .action((keyId: string) =>
      oneShot('keys', async (rt) => {
        const { revokeApiKey } = await import('./api-keys');
        const revoked = await revokeApiKey(rt.pool, keyId);
        rt.log.info({ key_id: keyId }, revoked ? 'api key revoked' : 'no active key with that id');
        if (!revoked) process.exitCode = 1;
      }),
    );
  keys
    .command('list')
    .description('list keys (without secrets), newest first')
    .option('--tenant <id>', 'only this tenant')
    .action((o: { tenant?: string }) =>
      oneShot('keys', async (rt) => {
        const { listApiKeys } = await import('./api-keys');
        for (const k of await listApiKeys(rt.pool, o.tenant)) {
          const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active';
          process.stdout.write(`${k.keyId}\t${k.tenantId}\t${k.role}\t${state}\t${k.label ?? ''}\n`);
        }
      }),
    );
}
