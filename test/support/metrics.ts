/**
 * Reading Prometheus text in specs: `scrape(url)` fetches it, `sample(text, name, labels)` is the value of
 * the one series of `name` whose labels include `labels` (undefined when none), `types(text)` maps each
 * metric name to its `# TYPE`.
 */
export async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.text();
}

function labelsOf(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  return out;
}

/** Every series of `name` as [labels, value]. */
export function series(text: string, name: string): [Record<string, string>, number][] {
  const out: [Record<string, string>, number][] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) out.push([labelsOf(m[2] ?? ''), Number(m[3] === '+Inf' ? Infinity : m[3])]);
  }
  return out;
}

/** The value of the series of `name` whose labels include `labels`; the sum when several match. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = series(text, name).filter(([l]) => Object.entries(labels).every(([k, v]) => l[k] === v));
  return hits.length ? hits.reduce((n, [, v]) => n + v, 0) : undefined;
}

export function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}
