#!/usr/bin/env node
// Builds the web console into dist/ui: the hand-written ES modules of ui/ as they are, plus Preact, its hooks and
// htm from node_modules with their bare imports made relative. No bundler, nothing fetched: it runs offline.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'ui');
const pkgDir = (name) => join(root, 'node_modules', name);

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'vendor'), { recursive: true });
cpSync(join(root, 'ui'), out, { recursive: true });

const vendor = [
  [join(pkgDir('preact'), 'dist', 'preact.mjs'), 'preact.mjs'],
  [join(pkgDir('preact'), 'hooks', 'dist', 'hooks.mjs'), 'hooks.mjs'],
  [join(pkgDir('htm'), 'dist', 'htm.mjs'), 'htm.mjs'],
];
for (const [from, name] of vendor) {
  const text = readFileSync(from, 'utf8')
    .replace(/from\s*["']preact["']/g, 'from"./preact.mjs"')
    .replace(/\/\/# sourceMappingURL=.*$/m, '');
  if (/from\s*["'][^./]/.test(text)) throw new Error(`${name} still imports a bare module; the console would not load offline`);
  writeFileSync(join(out, 'vendor', name), text);
}
console.log(`console built into ${out}`);
