import { originOf, summariseProfile } from './cpu-profile';

const frame = (functionName: string, url: string, lineNumber = 0) => ({ functionName, url, lineNumber });

describe('CPU profile summary', () => {
  it('names where code lives: a package (scoped or not), a Vigil file under dist, a node built-in, a V8 bucket', () => {
    expect(originOf('file:///w/node_modules/express/lib/router/index.js', 'handle')).toBe('pkg:express');
    expect(originOf('file:///w/node_modules/@opentelemetry/sdk-trace-base/build/src/Span.js', 'end')).toBe(
      'pkg:@opentelemetry/sdk-trace-base',
    );
    expect(originOf('file:///w/node_modules/a/node_modules/b/index.js', 'f')).toBe('pkg:b');
    expect(originOf('file:///work/main/dist/api/routes/sessions.js', 'summary')).toBe('vigil:api/routes/sessions.js');
    expect(originOf('node:internal/http', 'write')).toBe('node:internal/http');
    expect(originOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(originOf('', 'JSONStringify')).toBe('(native)');
  });

  it('given samples, when summarised, then self time adds up per origin and function, idle left out of busy', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', '') },
        { id: 2, callFrame: frame('(idle)', '') },
        { id: 3, callFrame: frame('handle', 'file:///w/node_modules/express/lib/router/index.js', 9) },
        { id: 4, callFrame: frame('next', 'file:///w/node_modules/express/lib/router/index.js', 99) },
        { id: 5, callFrame: frame('(garbage collector)', '') },
      ],
      samples: [2, 3, 3, 4, 5, 2],
      timeDeltas: [4000, 1000, 1000, 2000, 4000, 8000],
    };
    const s = summariseProfile(profile, 'p.cpuprofile');
    expect(s.total_ms).toBe(20);
    expect(s.busy_share).toBe(0.4);
    expect(s.by_origin).toEqual([
      { origin: 'pkg:express', ms: 4, share_of_busy: 0.5 },
      { origin: '(garbage collector)', ms: 4, share_of_busy: 0.5 },
    ]);
    expect(s.by_function[0]).toEqual({
      function: '(garbage collector)',
      origin: '(garbage collector)',
      ms: 4,
      share_of_busy: 0.5,
    });
    expect(s.by_function.slice(1)).toEqual([
      { function: 'handle index.js:10', origin: 'pkg:express', ms: 2, share_of_busy: 0.25 },
      { function: 'next index.js:100', origin: 'pkg:express', ms: 2, share_of_busy: 0.25 },
    ]);
  });
});
