// Storage stays in its room: only src/stores/ imports better-sqlite3 or runs SQL, so a shared store (Redis,
// PostgreSQL) can replace an embedded one without touching guards, adapters or the audit room.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const outsideStores = sources(SRC)
  .map((file) => ({ file: relative(SRC, file), text: readFileSync(file, 'utf8') }))
  .filter(({ file }) => !file.startsWith('stores/'));

describe('storage boundaries', () => {
  it('reads a real tree (the check below cannot pass on an empty one)', () => {
    expect(outsideStores.length).toBeGreaterThan(50);
    expect(sources(join(SRC, 'stores')).length).toBeGreaterThan(10);
  });

  it('no module outside src/stores imports better-sqlite3', () => {
    const importers = outsideStores.filter(({ text }) => /from\s+['"]better-sqlite3['"]|import\(\s*['"]better-sqlite3['"]\s*\)|require\(\s*['"]better-sqlite3['"]\s*\)/.test(text));
    expect(importers.map((f) => f.file)).toEqual([]);
  });

  it('no module outside src/stores imports a Redis or PostgreSQL client', () => {
    const importers = outsideStores.filter(({ text }) => /(from\s+|import\(\s*|require\(\s*)['"](ioredis|pg|pg-[a-z-]+)['"]/.test(text));
    expect(importers.map((f) => f.file)).toEqual([]);
  });

  it('no module outside src/stores prepares SQL or sets pragmas', () => {
    const sql = outsideStores.filter(({ text }) => /\.prepare\s*[<(]|\.pragma\s*\(/.test(text));
    expect(sql.map((f) => f.file)).toEqual([]);
  });
});
