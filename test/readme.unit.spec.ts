import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../core/config';

/**
 * README.md's configuration reference and core/config.ts stay one list: every variable loadConfig
 * reads has a row in the table under "## Configuration", and every row names a variable it reads.
 * The variables read are recorded from loadConfig itself (a recording environment), not parsed
 * from the source, so a variable added in any form is seen.
 */
const README = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

/** The variables named in the first column of the README's configuration table. */
function documentedVariables(markdown: string): Set<string> {
  const section = /^## Configuration\n([\s\S]*?)(?=^## )/m.exec(markdown);
  if (!section) throw new Error('README.md has no "## Configuration" section');
  const rows = section[1]!.split('\n').filter((line) => line.startsWith('|'));
  const names = rows.flatMap((row) => {
    const first = row.split('|')[1] ?? '';
    return [...first.matchAll(/`((?:VIGIL|OTEL)_[A-Z0-9_]+)`/g)].map((m) => m[1]!);
  });
  return new Set(names);
}

/** The variables loadConfig reads, recorded through a proxy environment (every one unset). */
function variablesRead(): Set<string> {
  const read = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get(_target, key) {
      if (typeof key === 'string') read.add(key);
      return undefined;
    },
  });
  loadConfig(env);
  return read;
}

describe('README configuration reference', () => {
  const documented = documentedVariables(README);
  const read = variablesRead();

  it('finds the table and the variables', () => {
    expect(documented.size).toBeGreaterThan(20);
    expect(read.size).toBeGreaterThan(20);
    expect(read).toContain('VIGIL_KAFKA_BROKERS');
  });

  it('documents every variable core/config.ts reads', () => {
    expect([...read].filter((v) => !documented.has(v)).sort()).toEqual([]);
  });

  it('documents no variable core/config.ts does not read', () => {
    expect([...documented].filter((v) => !read.has(v)).sort()).toEqual([]);
  });
});
