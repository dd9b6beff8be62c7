#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('switchyard: dist/ is missing; run `npm install` (or `npm run build`) in the package first.\n');
  process.exit(1);
}
const { main } = await import(cli.href);
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`switchyard: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
