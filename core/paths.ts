import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root (the folder of Vigil's package.json), whether running from source or dist/. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'vigil') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`Vigil's package.json not found above ${__dirname}`);
    dir = up;
  }
}
