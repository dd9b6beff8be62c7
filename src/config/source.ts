/** One configuration file parsed with the yaml parser (JSON included), so every value keeps its line for problem reports. */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar, isAlias, type Document, type Node } from 'yaml';
import type { ConfigProblem } from './types.js';

export type ValuePath = readonly (string | number)[];

export interface ParsedSource {
  file: string;
  /** The document as plain data; undefined when the file is empty or only comments. */
  data: unknown;
  problems: ConfigProblem[];
  /** 1-based line of the key (for map entries) or item (for sequence entries) at `path`; the nearest existing ancestor when absent. */
  lineAt(path: ValuePath): number;
}

/** Blank out `//` and `/* *\/` comments outside strings, keeping every newline so lines stay true (VS Code's mcp.json is JSONC). */
export function stripJsonComments(text: string): string {
  let out = '';
  let i = 0;
  let inString = false;
  while (i < text.length) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (ch === '\\' && i + 1 < text.length) out += text[++i];
      else if (ch === '"') inString = false;
      i++;
    } else if (ch === '"') {
      inString = true;
      out += ch;
      i++;
    } else if (ch === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      for (; i < stop; i++) out += text[i] === '\n' ? '\n' : ' ';
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

function readText(file: string): { text?: string; problem?: ConfigProblem } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { problem: { file, line: 1, message: `cannot read file (${code}); check that it exists and is readable` } };
  }
}

/** Parse a file's text; syntax errors become problems on their own lines. */
export function parseSourceText(file: string, rawText: string): ParsedSource {
  const text = /\.json$/i.test(file) ? stripJsonComments(rawText) : rawText;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // The parser often reports one mistake several ways on the same line; the first report names it best.
  const problems: ConfigProblem[] = [];
  for (const err of doc.errors) {
    const line = lineCounter.linePos(err.pos[0]).line;
    if (!problems.some((p) => p.line === line)) problems.push({ file, line, message: syntaxMessage(err.code, err.message) });
  }
  const lineOf = (offset: number): number => lineCounter.linePos(offset).line;
  const data: unknown = problems.length === 0 && doc.contents !== null ? doc.toJS({ maxAliasCount: 100 }) : undefined;
  return { file, data, problems, lineAt: (path) => locate(doc, path, lineOf) };
}

export function parseSourceFile(file: string): ParsedSource {
  const { text, problem } = readText(file);
  if (problem || text === undefined) {
    return { file, data: undefined, problems: problem ? [problem] : [], lineAt: () => 1 };
  }
  return parseSourceText(file, text);
}

function syntaxMessage(code: string, message: string): string {
  if (code === 'MULTIPLE_DOCS') return 'YAML syntax: more than one document (---) in the file; keep one document per file';
  if (code === 'DUPLICATE_KEY') return 'YAML syntax: duplicate key; keep only one of them';
  return `YAML syntax: ${message.replace(/\s+/g, ' ').trim()}; fix the syntax at this line`;
}

function firstLine(node: Node | null | undefined, lineOf: (offset: number) => number): number {
  const start = node?.range?.[0];
  return start === undefined ? 1 : lineOf(start);
}

function locate(doc: Document, path: ValuePath, lineOf: (offset: number) => number): number {
  let node: unknown = doc.contents;
  let line = firstLine(doc.contents as Node | null, lineOf);
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return line;
      line = firstLine(pair.key as Node, lineOf);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) return line;
      line = firstLine(item as Node, lineOf);
      node = item;
    } else {
      return line;
    }
  }
  return line;
}
