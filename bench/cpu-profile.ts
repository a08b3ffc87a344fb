import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Summary of a V8 `.cpuprofile` (what `node --cpu-prof` writes at exit): self time by where the code
 * lives (a package under node_modules, a Vigil source file, a node: built-in, or V8's own buckets such
 * as `(garbage collector)` and `(idle)`) and by function. Self time of a node = the sum of the sample
 * intervals that landed in it.
 */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  total_ms: number;
  /** Share of samples outside `(idle)`: how busy the process was. */
  busy_share: number;
  /** Self time by where the code lives, share of busy (non-idle) time, largest first. */
  by_origin: { origin: string; ms: number; share_of_busy: number }[];
  by_function: { function: string; origin: string; ms: number; share_of_busy: number }[];
}

/** Where a call frame's code lives: `pkg:<name>`, `vigil:<file>`, `node:<module>`, or V8's bucket. */
export function originOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return `pkg:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return url;
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return `vigil:${url.slice(dist + '/dist/'.length)}`;
  return url.replace(/^file:\/\//, '');
}

export function summariseProfile(profile: CpuProfile, file: string, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const origins = new Map<string, number>();
  const functions = new Map<string, { origin: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const { functionName, url, lineNumber } = n.callFrame;
    const origin = originOf(url, functionName);
    if (origin === '(idle)') {
      idle += us;
      continue;
    }
    origins.set(origin, (origins.get(origin) ?? 0) + us);
    const name = `${functionName || '(anonymous)'}${url ? ` ${path.basename(url)}:${lineNumber + 1}` : ''}`;
    const f = functions.get(name) ?? { origin, us: 0 };
    f.us += us;
    functions.set(name, f);
  }
  const busy = Math.max(1, total - idle);
  const ms = (us: number) => Math.round(us / 100) / 10;
  const share = (us: number) => Math.round((us / busy) * 1000) / 1000;
  return {
    file,
    total_ms: ms(total),
    busy_share: Math.round(((total - idle) / Math.max(1, total)) * 1000) / 1000,
    by_origin: [...origins]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([origin, us]) => ({ origin, ms: ms(us), share_of_busy: share(us) })),
    by_function: [...functions]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([fn, f]) => ({ function: fn, origin: f.origin, ms: ms(f.us), share_of_busy: share(f.us) })),
  };
}

/** Summaries of every `.cpuprofile` in a directory (one per process that exited with --cpu-prof). */
export function summariseProfiles(dir: string, top = 15): ProfileSummary[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) =>
      summariseProfile(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile, path.join(dir, f), top),
    );
}
