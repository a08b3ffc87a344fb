/**
 * Three layers, selectable with --selectProjects: unit (pure logic, no I/O), int (real Kafka,
 * PostgreSQL, Redis, registry), e2e (the whole pipeline as separate processes).
 * `npm test` runs all of them; int and e2e need `npm run stack:up` first (.ci/run does it).
 *
 * Storage paths: `int` and `e2e` make their databases on the stack's TimescaleDB cluster
 * (deploy/local/timescaledb.sh, 127.0.0.1:5433). `int-plain` runs the specs of the plain-table path
 * on the machine's PostgreSQL without TimescaleDB (127.0.0.1:5432; test/support/plain-postgres.ts):
 * the `*.plain.int.spec.ts` files, and the specs below that cover both paths (migrations, read
 * models, score queries, rebuild, retention), which thus run once per path.
 */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const common = {
  transform,
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  modulePathIgnorePatterns: ['<rootDir>/dist', '<rootDir>/.local'],
};
const bothPaths = [
  'projections/read-models.int.spec.ts',
  'api/scores.int.spec.ts',
  'projections/rebuild/rebuild.int.spec.ts',
  'jobs/retention/retention.int.spec.ts',
];
module.exports = {
  testTimeout: 120_000,
  // A spec of this round leaves two Redis connections open in the jest process: every test passed and
  // jest then waited for ever ("did not exit one second after the test run"). Exit when the run is done
  // until it is found (`npx jest --detectOpenHandles`); the leak is listed in docs/design.md's leftovers.
  forceExit: true,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['**/*.unit.spec.ts'] },
    {
      ...common,
      displayName: 'int',
      testMatch: ['**/*.int.spec.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.plain\\.int\\.spec\\.ts$'],
    },
    {
      ...common,
      displayName: 'int-plain',
      testMatch: ['**/*.plain.int.spec.ts', ...bothPaths.map((p) => `<rootDir>/${p}`)],
      setupFiles: ['<rootDir>/test/support/plain-postgres.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['**/*.e2e.spec.ts'] },
  ],
};
