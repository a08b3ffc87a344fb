import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Client } from 'pg';

/**
 * Starts PGlite with TimescaleDB 2.23 (WASM) behind the PostgreSQL wire protocol in a child process,
 * and connects one client to it (PGlite serves one client at a time). For migration tests of the
 * TimescaleDB path; not for load.
 */
export async function startTimescalePglite(): Promise<{ client: Client; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, 'pglite-timescale-server.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('PGlite did not start within 60 s')), 60_000);
    child.once('exit', (code) => reject(new Error(`PGlite exited with ${code}`)));
    child.stdout!.on('data', (d: Buffer) => {
      const m = /listening (\d+)/.exec(d.toString());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  // PGlite accepts any password and speaks no TLS.
  const client = new Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: 'pglite',
    database: 'postgres',
    ssl: false,
  });
  await client.connect();
  return {
    client,
    stop: async () => {
      await client.end().catch(() => {});
      child.kill('SIGTERM');
    },
  };
}
