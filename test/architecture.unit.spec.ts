import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * The top-level folders import one another in one direction only: schemas (the contract) imports
 * nothing of Vigil; core imports schemas; processors, producers, projections, api and deploy import
 * core and schemas (and api may read projections'); main.ts imports them all. A cycle between two
 * folders means neither can be understood, tested or moved without the other.
 */
const ROOT = resolve(__dirname, '..');
const FOLDERS = ['api', 'core', 'jobs', 'processors', 'producers', 'projections', 'schemas', 'deploy'];

type Graph = Map<string, Set<string>>;

/** The `.ts` files under a folder, specs left out (they may reach across folders for fixtures). */
function sourcesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesOf(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

/** The top-level folder (or `main.ts`) of a path relative to the root. */
const topOf = (path: string): string => path.split(sep)[0]!;

/** Relative module specifiers of a source: static imports, re-exports and dynamic imports. */
function relativeImports(source: string): string[] {
  const found = [...source.matchAll(/(?:from\s+|import\s*\(\s*|^import\s+)'(\.{1,2}\/[^']*)'/gm)].map((m) => m[1]!);
  return found;
}

/** Folder import graph: an edge a → b when a file of a imports a file of b (a ≠ b). */
function folderGraph(files: readonly { path: string; source: string }[]): Graph {
  const graph: Graph = new Map();
  for (const { path, source } of files) {
    const from = topOf(path);
    for (const specifier of relativeImports(source)) {
      const to = topOf(relative(ROOT, resolve(ROOT, dirname(path), specifier)));
      if (to === from) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from)!.add(to);
    }
  }
  return graph;
}

/** One cycle of the graph as the path that closes it (`['a', 'b', 'a']`), or undefined. */
function findCycle(graph: Graph): string[] | undefined {
  const done = new Set<string>();
  const visit = (node: string, path: string[]): string[] | undefined => {
    const at = path.indexOf(node);
    if (at >= 0) return [...path.slice(at), node];
    if (done.has(node)) return undefined;
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      const cycle = visit(next, [...path, node]);
      if (cycle) return cycle;
    }
    done.add(node);
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    const cycle = visit(node, []);
    if (cycle) return cycle;
  }
  return undefined;
}

const filesOf = (sources: Record<string, string>) =>
  Object.entries(sources).map(([path, source]) => ({ path: path.split('/').join(sep), source }));

describe('folder import graph', () => {
  it('finds a cycle between folders, and none in a graph that goes one way', () => {
    const oneWay = folderGraph(
      filesOf({
        'api/app.ts': "import { x } from '../core/x';\nimport { y } from '../schemas/y';",
        'core/x.ts': "import type { Y } from '../schemas/y';",
        'schemas/y.ts': "import { z } from './z';",
      }),
    );
    expect(findCycle(oneWay)).toBeUndefined();

    const cyclic = folderGraph(
      filesOf({
        'api/app.ts': "import { x } from '../core/x';",
        'core/x.ts': "export { y } from '../schemas/y';",
        'schemas/y.ts': "const { x } = await import('../core/x');",
      }),
    );
    expect(findCycle(cyclic)).toEqual(['core', 'schemas', 'core']);

    const bySideEffect = folderGraph(
      filesOf({ 'core/x.ts': "import '../schemas/y';", 'schemas/y.ts': "import '../core/x';" }),
    );
    expect(findCycle(bySideEffect)).toEqual(['core', 'schemas', 'core']);
  });

  it('has no cycle between the top-level folders of Vigil', () => {
    const files = [...FOLDERS.flatMap((folder) => sourcesOf(join(ROOT, folder))), join(ROOT, 'main.ts')].map(
      (file) => ({ path: relative(ROOT, file), source: readFileSync(file, 'utf8') }),
    );
    const graph = folderGraph(files);
    expect(graph.get('core')?.has('schemas')).toBe(true); // the graph is read: core uses the contract
    expect(findCycle(graph)?.join(' -> ')).toBeUndefined();
  });
});
