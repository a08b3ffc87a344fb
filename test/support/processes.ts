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
