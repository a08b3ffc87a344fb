/**
 * Three layers, selectable with --selectProjects: unit (pure logic, no I/O), int (real Kafka,
 * PostgreSQL, Redis, registry), e2e (the whole pipeline as separate processes).
 * `npm test` runs all three; int and e2e need `npm run stack:up` first (.ci/run does it).
 */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const common = { transform, testEnvironment: 'node', roots: ['<rootDir>'], modulePathIgnorePatterns: ['<rootDir>/dist', '<rootDir>/.local'] };
module.exports = {
  testTimeout: 120_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['**/*.unit.spec.ts'] },
    { ...common, displayName: 'int', testMatch: ['**/*.int.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['**/*.e2e.spec.ts'] },
  ],
};
