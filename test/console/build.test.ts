/** The built console (dist/ui, made by scripts/build-ui.mjs in build, prepare and pretest) loads offline: every import resolves to a file in it. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/gateway.js';

const UI = join(REPO_ROOT, 'dist', 'ui');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('built console', () => {
  it('has an index whose script and stylesheet exist, and names no other host', () => {
    const html = readFileSync(join(UI, 'index.html'), 'utf8');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const [, ref] of html.matchAll(/(?:src|href)="([^"]+)"/g)) expect(existsSync(resolve(UI, ref!)), ref).toBe(true);
  });

  it('imports only its own files, by relative path', () => {
    const modules = files(UI).filter((f) => /\.m?js$/.test(f));
    expect(modules.length).toBeGreaterThan(5);
    for (const file of modules) {
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(/(?:import|export)[^'"`;]*?from\s*["']([^"']+)["']/g)) {
        expect(spec, `${file} imports ${spec}`).toMatch(/^\.\.?\//);
        expect(existsSync(resolve(dirname(file), spec!)), `${file} imports ${spec}`).toBe(true);
      }
    }
  });
});
