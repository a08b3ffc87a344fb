/**
 * Set-up of the `int-plain` jest project: the specs it runs get their databases from the machine's
 * plain PostgreSQL (no TimescaleDB preloaded) instead of the stack's TimescaleDB cluster, so the
 * plain-table path of the migrations, read models, score queries, rebuild and retention stays tested.
 * `VIGIL_TEST_DATABASE_PATH` tells the specs (and `migratedDatabase`, which checks it) which path.
 */
process.env.VIGIL_TEST_ADMIN_DATABASE_URL =
  process.env.VIGIL_TEST_PLAIN_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
process.env.VIGIL_TEST_DATABASE_PATH = 'plain';
