/**
 * `node dist/bench/cpuprofile.js <file.cpuprofile> [top]`: the functions with the most self time in
 * a V8 CPU profile (what `node --cpu-prof` writes, e.g. `npm run bench -- e2e --cpu-prof`), with
 * their share of the samples, and the share of idle, GC and program time.
 */
import * as fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export function summarize(file: string, top = 15): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const n = byId.get(id);
    if (!n) continue;
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  const pct = (n: number) => `${((100 * n) / total).toFixed(1)}%`;
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [`${file}: ${total} samples`, ...rows.map(([k, n]) => `${pct(n).padStart(6)}  ${k}`)].join('\n');
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node dist/bench/cpuprofile.js <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(`${summarize(file, Number(top ?? 15))}\n`);
}
