#!/usr/bin/env node
// Sums a sampled allocation profile (.heapprofile, from `npm run bench -- --heap-profile DIR` or
// `node bench/step-path.mjs --heap-profile DIR`) by function: bytes per call allocated in each function itself and
// under it. The calls are the measurement's (the bench prints them); without them the figures are totals.
//
//   node bench/heap-summary.mjs FILE [CALLS] [--top 40]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' } } });
const [file, callsArg] = positionals;
if (!file) {
  process.stderr.write('usage: node bench/heap-summary.mjs FILE [CALLS] [--top 40]\n');
  process.exit(2);
}
const calls = Number(callsArg ?? 1);
const top = Number(values.top);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const own = new Map();
const under = new Map();
let total = 0;
const name = (cf) => `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(node_modules\/|src\/|dist\/|bench\/)/, '$1')}:${cf.lineNumber + 1}`;

/** Adds a node's bytes to its function and to every distinct function above it; returns the bytes at and under it. */
function walk(node, above) {
  const k = name(node.callFrame);
  own.set(k, (own.get(k) ?? 0) + node.selfSize);
  total += node.selfSize;
  let sum = node.selfSize;
  const path = above.has(k) ? above : new Set(above).add(k);
  for (const child of node.children) sum += walk(child, path);
  if (!above.has(k)) under.set(k, (under.get(k) ?? 0) + sum);
  return sum;
}
walk(profile.head, new Set());

const unit = calls > 1 ? 'B/call' : 'B';
const show = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `${(v / calls).toFixed(0).padStart(9)}  ${k}`).join('\n');
console.log(`${(total / calls).toFixed(0)} ${unit} sampled in all\n\nin the function itself (${unit}):\n${show(own)}\n\nin it and under it (${unit}):\n${show(under)}`);
