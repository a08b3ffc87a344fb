import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from '../../core/paths';

/** Runs deploy/local/stack.sh <action> with the terminal attached; resolves with its exit code. */
export function runStackScript(action: string): Promise<number> {
  const script = path.join(repoRoot(), 'deploy', 'local', 'stack.sh');
  return new Promise((resolve) => {
    const child = spawn('bash', [script, action], { stdio: 'inherit' });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}
