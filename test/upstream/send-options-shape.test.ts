// The options an upstream call is sent with stay fast-mode objects (decision 0047). An object literal with a getter
// is made in dictionary mode with its getter in an old-space AccessorPair, which kept each call's closures, reply
// and request alive through every scavenge. Checked in a child process with V8's natives syntax, on the build.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

const SCRIPT = `
const { UpstreamSession } = await import(${JSON.stringify(join(ROOT, 'dist/upstream/session.js'))});
const { LazyAbort } = await import(${JSON.stringify(join(ROOT, 'dist/gateway/cancel.js'))});
const sent = [];
const transport = {
  async start() {},
  async close() {},
  async send(message, options) {
    if (message.id === undefined) return;
    sent.push(options);
    const result = message.method === 'initialize' ? { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'm', version: '1' } } : { content: [] };
    queueMicrotask(() => transport.onmessage?.({ jsonrpc: '2.0', id: message.id, result }, message.id));
  },
};
const manifest = { name: 'm', transport: 'http', url: 'http://127.0.0.1:9/mcp', args: [], env: {}, headers: {}, tools: { include: [], exclude: [] }, timeoutMs: 60000, connectTimeoutMs: 30000, idleSeconds: 600, breaker: { failures: 5, cooldownSeconds: 10 }, session: 'per-client', required: false, protocol: '2025-11-25', source: { file: 'm.yaml', line: 1 } };
const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } };
const session = new UpstreamSession(manifest, transport, { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } }, { onNotification() {}, onClose() {} }, silent);
await session.connect();
const cancels = [new LazyAbort(), new LazyAbort()];
for (const cancel of cancels) await session.request('tools/call', { name: 'x', arguments: {} }, { cancel, headers: { traceparent: 't' } });
const calls = sent.slice(-2);
cancels[1].abort('stop');
console.log(JSON.stringify({
  fast: calls.map((o) => %HasFastProperties(o)),
  sameMap: %HaveSameMap(calls[0], calls[1]),
  headers: calls[0].headers,
  abortedSignal: calls[1].signal.aborted,
  liveSignal: calls[0].signal.aborted,
}));
`;

describe('upstream send options', () => {
  it('are fast-mode objects of one shape, with the signal made on first read', () => {
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toEqual({ fast: [true, true], sameMap: true, headers: { traceparent: 't' }, abortedSignal: true, liveSignal: false });
  });
});
