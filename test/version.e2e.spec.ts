import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * `vigil --version` prints package.json's version from the built dist/main.js (what `npx vigil` and
 * the image run: the Dockerfile copies package.json beside dist/). `npm run test:e2e` builds first.
 */
const ROOT = path.join(__dirname, '..');
const MAIN = path.join(ROOT, 'dist', 'main.js');
const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('vigil --version', () => {
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  });

  it.each(['--version', '-v'])('%s prints the version of package.json and exits 0', (flag) => {
    const out = execFileSync(process.execPath, [MAIN, flag], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(out.trim()).toBe(version);
  });

  it('works from another working directory (the root is found from dist/, not the cwd)', () => {
    const out = execFileSync(process.execPath, [MAIN, '--version'], { cwd: '/', encoding: 'utf8', timeout: 30_000 });
    expect(out.trim()).toBe(version);
  });
});
