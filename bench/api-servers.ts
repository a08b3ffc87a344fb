import * as fs from 'node:fs';
import * as http from 'node:http';
import { countSpans } from './lib';

/**
 * Helper processes of `npm run bench -- api`, each its own process so neither competes with the load
 * generator's event loop:
 *
 * - `node dist/bench/api-servers.js bare <port> <file>`: the reference. A bare `node:http` handler that
 *   answers every request with the bytes of <file> (the API's cached session detail, captured from the
 *   API in the same run) as `application/json; charset=utf-8`: no routing, auth, rate limit, Redis,
 *   PostgreSQL or middleware.
 * - `node dist/bench/api-servers.js sink <port>`: a Zipkin-compatible endpoint (POST /api/v2/spans,
 *   202) that counts the spans it is sent (by their `"traceId"` fields, without parsing) and keeps
 *   nothing; `GET /count` answers the count. Used instead of the local Zipkin by default, whose 256 MB
 *   heap does not hold the spans of a benchmark run (see bench/api.ts).
 *
 * Prints `listening <port>` once it accepts connections.
 */
function main(): void {
  const [mode, port, file] = process.argv.slice(2);
  let server: http.Server;
  if (mode === 'bare' && file) {
    const body = fs.readFileSync(file);
    const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) };
    server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, headers).end(body);
    });
  } else if (mode === 'sink') {
    let spans = 0;
    const count = countSpans((n) => (spans += n));
    server = http.createServer((req, res) => {
      if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'text/plain' }).end(String(spans));
      count(req, res);
    });
  } else {
    process.stderr.write('usage: api-servers.js bare <port> <file> | sink <port>\n');
    process.exit(2);
  }
  server.keepAliveTimeout = 30_000;
  server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Keep-alive connections would hold close() open: end them.
  process.once('SIGTERM', () => server.closeAllConnections());
}

main();
