import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findCycles, importGraph, longFiles, resolveSpecifier, runtimeImports } from './helpers/import-graph.js';

const SRC = fileURLToPath(new URL('../src', import.meta.url));
const MAX_LINES = 400;

const graphOf = (edges: Record<string, string[]>): Map<string, string[]> => new Map(Object.entries(edges));

describe('the cycle finder', () => {
  it('finds no cycle in a graph without one, shared dependencies included', () => {
    expect(findCycles(graphOf({ a: ['b', 'c'], b: ['d'], c: ['d'], d: [] }))).toEqual([]);
  });

  it('names the modules around a cycle, and not the ones that only lead into it', () => {
    expect(findCycles(graphOf({ entry: ['a'], a: ['b'], b: ['c'], c: ['a', 'leaf'], leaf: [] }))).toEqual([['a', 'b', 'c', 'a']]);
  });

  it('reports a module importing itself and each separate cycle once', () => {
    const cycles = findCycles(graphOf({ a: ['a'], b: ['c'], c: ['b'], d: ['e'], e: ['f'], f: ['d', 'e'] }));
    expect(cycles.map((c) => c.join(' -> ')).sort()).toEqual(['a -> a', 'b -> c -> b', 'd -> e -> f -> d']);
  });

  it('reports the shortest way around a component', () => {
    expect(findCycles(graphOf({ a: ['b', 'x'], b: ['c'], c: ['a'], x: ['a'] }))).toEqual([['a', 'x', 'a']]);
  });
});

describe('the import reader', () => {
  it('keeps the imports and re-exports that remain at run time and drops the type-only ones', () => {
    const text = [
      "import type { A } from './type-only.js';",
      "import { type B, type C } from './inline-types.js';",
      "import { type D, e } from './mixed.js';",
      'import {',
      '  f,',
      '  g,',
      "} from './multi-line.js';",
      "import h from './default.js';",
      "import * as ns from './namespace.js';",
      "import './side-effect.js';",
      "export type { I } from './export-type.js';",
      "export { type J } from './export-inline-type.js';",
      "export { k } from './re-export.js';",
      "export * from './star.js';",
      "import { z } from 'zod';",
      "// import { no } from './comment.js';",
      "const later = () => import('./dynamic.js');",
    ].join('\n');
    expect(runtimeImports('x.ts', text)).toEqual([
      './mixed.js',
      './multi-line.js',
      './default.js',
      './namespace.js',
      './side-effect.js',
      './re-export.js',
      './star.js',
    ]);
  });

  it('resolves a .js specifier to the .ts file it compiles from', () => {
    expect(resolveSpecifier('gateway/gateway.ts', './notify.js')).toBe('gateway/notify.ts');
    expect(resolveSpecifier('gateway/gateway.ts', '../util/glob.js')).toBe('util/glob.ts');
    expect(resolveSpecifier('app.ts', './gateway/gateway.js')).toBe('gateway/gateway.ts');
  });
});

describe('a source tree on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-structure-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('with two modules importing each other at run time has a cycle; when one side is type-only it has none', () => {
    mkdirSync(join(dir, 'cyclic', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'cyclic', 'a.ts'), "import { b } from './sub/b.js';\nexport const a = () => b;\n");
    writeFileSync(join(dir, 'cyclic', 'sub', 'b.ts'), "import { a } from '../a.js';\nexport const b = () => a;\n");
    expect(findCycles(importGraph(join(dir, 'cyclic')))).toEqual([['a.ts', 'sub/b.ts', 'a.ts']]);

    mkdirSync(join(dir, 'typed'), { recursive: true });
    writeFileSync(join(dir, 'typed', 'a.ts'), "import { b } from './b.js';\nexport type A = number;\nexport const a = b;\n");
    writeFileSync(join(dir, 'typed', 'b.ts'), "import type { A } from './a.js';\nexport const b: A = 1;\n");
    expect(findCycles(importGraph(join(dir, 'typed')))).toEqual([]);
  });

  it('with a file over the limit lists it with its line count', () => {
    mkdirSync(join(dir, 'long'), { recursive: true });
    writeFileSync(join(dir, 'long', 'short.ts'), 'export const x = 1;\n'.repeat(MAX_LINES));
    writeFileSync(join(dir, 'long', 'long.ts'), 'export const x = 1;\n'.repeat(MAX_LINES + 1));
    expect(longFiles(join(dir, 'long'), MAX_LINES)).toEqual([{ file: 'long.ts', lines: MAX_LINES + 1 }]);
  });
});

describe('src/', () => {
  it('has no import cycle among its modules at run time', () => {
    const graph = importGraph(SRC);
    // The reader sees the tree: a value import is an edge, a type-only one is not.
    expect(graph.get('gateway/gateway.ts')).toContain('gateway/client-session.ts');
    expect(graph.get('gateway/relays.ts')).not.toContain('gateway/gateway.ts');
    const cycles = findCycles(graph).map((c) => c.join(' -> '));
    expect(cycles, `import cycles in src/ (break each one, e.g. with import type or by moving the shared part out):\n${cycles.join('\n')}`).toEqual([]);
  });

  it(`has no file over ${MAX_LINES} lines`, () => {
    const long = longFiles(SRC, MAX_LINES).map((f) => `${f.file}: ${f.lines} lines`);
    expect(long, `files in src/ over ${MAX_LINES} lines (split each along a seam):\n${long.join('\n')}`).toEqual([]);
  });
});
