import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

const MAIN = path.join(__dirname, '..', '..', 'dist', 'main.js');

/** A `vigil` process started from the build (npm test builds first), with output kept for diagnosis. */
export interface VigilProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number>;
}

export function startVigil(args: string[], env: Record<string, string>): VigilProcess {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : 1))));
  return { child, output: () => out, exited };
}

/** Runs a `vigil` command to completion; rejects with its output when it fails. */
export async function runVigil(args: string[], env: Record<string, string>): Promise<string> {
  const p = startVigil(args, env);
  const code = await p.exited;
  if (code !== 0) throw new Error(`vigil ${args.join(' ')} exited ${code}:\n${p.output()}`);
  return p.output();
}

/**
 * The `vigil` processes of one spec, all on one environment: `start` starts one and keeps it;
 * `stopAll` (for afterAll) sends `signal` to those still running and waits until every one has exited.
 */
export interface VigilProcessGroup {
  start(args: string[]): VigilProcess;
  stopAll(signal: NodeJS.Signals): Promise<void>;
}

export function processGroup(env: Record<string, string>): VigilProcessGroup {
  const running: VigilProcess[] = [];
  return {
    start(args) {
      const started = startVigil(args, env);
      running.push(started);
      return started;
    },
    async stopAll(signal) {
      for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
      await Promise.all(running.map((p) => p.exited));
    },
  };
}
