/**
 * The run-time import graph of the TypeScript sources: static imports and re-exports of relative modules, without
 * those marked type-only (`import type`, `export type`, or only `type` names), which the compiler erases.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Every .ts file under `root`, as paths relative to it with forward slashes. */
export function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(relative(root, p).split('\\').join('/'));
    }
  };
  walk(root);
  return out.sort();
}

/** Whether an import declaration survives compilation: not `import type`, and not made only of `type` names. */
function importIsRuntime(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return true; // import './x.js' runs the module
  if (clause.isTypeOnly) return false;
  if (clause.name) return true;
  const bindings = clause.namedBindings;
  if (!bindings || ts.isNamespaceImport(bindings)) return true;
  return bindings.elements.length === 0 || bindings.elements.some((el) => !el.isTypeOnly);
}

function exportIsRuntime(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return false;
  const clause = node.exportClause;
  if (!clause || ts.isNamespaceExport(clause)) return true;
  return clause.elements.length === 0 || clause.elements.some((el) => !el.isTypeOnly);
}

/** Relative specifiers of the static imports and re-exports of one file that remain at run time. */
export function runtimeImports(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const stmt of sf.statements) {
    let spec: ts.Expression | undefined;
    if (ts.isImportDeclaration(stmt) && importIsRuntime(stmt)) spec = stmt.moduleSpecifier;
    else if (ts.isExportDeclaration(stmt) && exportIsRuntime(stmt)) spec = stmt.moduleSpecifier;
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.')) out.push(spec.text);
  }
  return out;
}

/** The module a relative `.js` specifier names, as the `.ts` path under root it compiles from. */
export function resolveSpecifier(from: string, spec: string): string {
  const target = join(dirname(from), spec).split('\\').join('/');
  return target.endsWith('.js') ? `${target.slice(0, -3)}.ts` : target;
}

/** The run-time import graph of the files under root: file → files it imports (both relative to root). */
export function importGraph(root: string): Map<string, string[]> {
  const files = sourceFiles(root);
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(resolve(root, f), 'utf8');
    // Data files (JSON) are no modules of the graph.
    const targets = runtimeImports(f, text).filter((s) => s.endsWith('.js')).map((s) => resolveSpecifier(f, s));
    const missing = targets.filter((t) => !known.has(t));
    if (missing.length > 0) throw new Error(`${f} imports ${missing.join(', ')}, which is not a source file under ${root}`);
    graph.set(f, [...new Set(targets)]);
  }
  return graph;
}

/**
 * One cycle per strongly connected component of more than one module (or a module importing itself), each as
 * the path of modules around it with the first repeated at the end. Empty when the graph has no cycle.
 */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const edges = (n: string): readonly string[] => graph.get(n) ?? [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || edges(v).includes(v)) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return components.map((c) => cycleWithin(graph, new Set(c)));
}

/** A shortest cycle through the smallest-named module of a strongly connected component. */
function cycleWithin(graph: ReadonlyMap<string, readonly string[]>, members: ReadonlySet<string>): string[] {
  const start = [...members].sort()[0]!;
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at = v; at !== start; at = parent.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** Files under root longer than `max` lines, with their line counts. */
export function longFiles(root: string, max: number): Array<{ file: string; lines: number }> {
  const out: Array<{ file: string; lines: number }> = [];
  for (const f of sourceFiles(root)) {
    const text = readFileSync(resolve(root, f), 'utf8');
    const lines = text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > max) out.push({ file: f, lines });
  }
  return out;
}
