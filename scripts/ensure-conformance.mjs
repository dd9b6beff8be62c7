#!/usr/bin/env node
// Installs the MCP conformance CLIs (and the Node 22 they run on) into
// test/conformance/ (0.1.16, the 2025-11-25 suite) and test/conformance-2026/
// (0.2.0-alpha.12 with the v2 SDK its fixture server uses, for 2026-07-28) when
// missing, so `npm install && npm test` works on a fresh clone. Kept out of the
// root install so that package's `node` binary never shadows the project's Node 20.
// Silent when everything is already there.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MCP = ['node_modules', '@modelcontextprotocol'];

/** Each folder with its own lock, and the files a working install leaves there. */
const TOOLCHAINS = [
  {
    prefix: join(ROOT, 'test', 'conformance'),
    required: [
      join('node_modules', '.bin', 'node'),
      join(...MCP, 'conformance', 'dist', 'index.js'),
    ],
  },
  {
    prefix: join(ROOT, 'test', 'conformance-2026'),
    required: [
      join('node_modules', '.bin', 'node'),
      join(...MCP, 'conformance', 'dist', 'index.js'),
      join(...MCP, 'conformance', 'requirements', '2026-07-28.yaml'),
      join(...MCP, 'server', 'dist', 'index.mjs'),
      join(...MCP, 'client', 'dist', 'index.mjs'),
    ],
  },
];

for (const { prefix, required } of TOOLCHAINS) ensure(prefix, required.map((file) => join(prefix, file)));

function ensure(PREFIX, REQUIRED) {
  const nodeBin = REQUIRED[0];
  if (REQUIRED.every((file) => existsSync(file))) return;

  const prefix = relative(process.cwd(), PREFIX) || '.';
  const hasLock = existsSync(join(PREFIX, 'package-lock.json'));
  // `npm ci` installs exactly the committed lock; without one, create it (and commit it).
  const args = [hasLock ? 'ci' : 'install', '--prefix', prefix, '--no-audit', '--no-fund'];
  console.error(`Installing the MCP conformance CLI: npm ${args.join(' ')}`);
  if (!hasLock) console.error(`${prefix}/package-lock.json is missing; it will be created: commit it.`);

  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const run = spawnSync(npm, args, { stdio: 'inherit', shell: process.platform === 'win32' });
  if (run.status !== 0) {
    console.error(
      `Installing the conformance CLI failed (${run.error?.message ?? `exit ${run.status}`}). ` +
        `Check network access to the npm registry, then run: npm ${args.join(' ')}`,
    );
    process.exit(1);
  }

  const missing = REQUIRED.filter((file) => !existsSync(file));
  if (missing.length > 0) {
    console.error(
      `The install finished but these are still missing: ${missing.map((f) => relative(ROOT, f)).join(', ')}. ` +
        `Remove ${prefix}/node_modules and run: npm ci --prefix ${prefix}`,
    );
    process.exit(1);
  }

  // The `node` package fetches its binary in an install script; a blocked script leaves a dud.
  const probe = spawnSync(nodeBin, ['--version'], { encoding: 'utf8' });
  const major = Number(/^v(\d+)\./.exec(probe.stdout ?? '')?.[1]);
  if (!(major >= 22)) {
    console.error(
      `${relative(ROOT, nodeBin)} does not report Node >= 22 (got ${JSON.stringify(probe.stdout?.trim() ?? probe.error?.message)}). ` +
        `If npm skipped install scripts, allow them for the \`node\` package and rerun: npm ci --prefix ${prefix}`,
    );
    process.exit(1);
  }
}
