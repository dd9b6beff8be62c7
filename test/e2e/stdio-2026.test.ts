// `switchyard stdio` speaking 2026-07-28: a line whose `_meta` claims the revision is served per request (no
// initialize), with the same ladder, cache hints, input_required bridge and listen stream as on HTTP; a client that
// initializes instead gets the 2025-11-25 session as before. A real process, driven line by line.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest, REPO_ROOT, requireBuild, stdioHome, stopAll } from '../helpers/gateway.js';

requireBuild();

const PV = '2026-07-28';
const CAPS = { elicitation: {} };
const META = { 'io.modelcontextprotocol/protocolVersion': PV, 'io.modelcontextprotocol/clientCapabilities': CAPS, 'io.modelcontextprotocol/clientInfo': { name: 'stdio-2026', version: '1' } };

type Line = { id?: unknown; method?: string; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> }; params?: Record<string, unknown> };

let proc: ChildProcessWithoutNullStreams;
const lines: Line[] = [];
const waiters = new Set<() => void>();
let stderr = '';
let nextId = 1;

/** The first line (in arrival order, from `from`) that `pred` accepts; fails with what came after `ms`. */
function lineWhere(pred: (l: Line) => boolean, what: string, ms = 10_000): Promise<Line> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const hit = lines.find(pred);
      if (!hit) return;
      waiters.delete(check);
      clearTimeout(timer);
      resolve(hit);
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`${what} never arrived; lines: ${JSON.stringify(lines)}\nstderr: ${stderr.slice(-2000)}`));
    }, ms);
    waiters.add(check);
    check();
  });
}

function send(msg: Record<string, unknown>): void {
  proc.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...msg })}\n`);
}

/** One request; resolves with its response line. */
function request(method: string, params: Record<string, unknown>): Promise<Line> {
  const id = nextId++;
  send({ id, method, params });
  return lineWhere((l) => l.id === id && l.method === undefined, `the answer to ${method} #${id}`);
}

beforeAll(() => {
  const { args } = stdioHome({ fx: fixtureManifest() });
  proc = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let buffer = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (text) lines.push(JSON.parse(text) as Line);
    }
    for (const w of [...waiters]) w();
  });
});

afterAll(async () => {
  const exited = new Promise((r) => proc.once('exit', r));
  proc.stdin.end();
  await exited;
  await stopAll();
});

describe('switchyard stdio, 2026-07-28 per request', () => {
  it('server/discover, lists with cache hints and a call, with no initialize', async () => {
    const discover = await request('server/discover', { _meta: META });
    expect(discover.result).toMatchObject({ supportedVersions: [PV], resultType: 'complete', _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'switchyard' } } });
    const list = await request('tools/list', { _meta: META });
    expect((list.result!.tools as Array<{ name: string }>).map((t) => t.name)).toContain('fx__echo');
    expect([list.result!.cacheScope, list.result!.ttlMs]).toEqual(['private', 0]);
    const echo = await request('tools/call', { name: 'fx__echo', arguments: { text: 'stdio 2026' }, _meta: META });
    expect(echo.result).toMatchObject({ resultType: 'complete', content: [{ type: 'text', text: 'stdio 2026' }] });
    expect(typeof (echo.result!._meta as Record<string, unknown>)['io.switchyard/workflowId']).toBe('string');
  });

  it('answers the revision’s errors: a missing envelope field is -32602, another version -32022', async () => {
    const bare = await request('tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': PV } });
    expect(bare.error?.code).toBe(-32602);
    const other = await request('tools/list', { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2030-01-01' } });
    expect([other.error?.code, other.error?.data?.supported]).toEqual([-32022, [PV]]);
  });

  it('bridges a legacy upstream’s elicitation into input_required, and the retry completes the call', async () => {
    const first = await request('tools/call', { name: 'fx__elicit', arguments: { message: 'Your name?' }, _meta: META });
    expect(first.result!.resultType).toBe('input_required');
    const key = Object.keys(first.result!.inputRequests as object)[0]!;
    expect(String(first.result!.requestState)).toMatch(/^sy1\./);
    const retry = await request('tools/call', { name: 'fx__elicit', arguments: { message: 'Your name?' }, requestState: first.result!.requestState, inputResponses: { [key]: { action: 'accept', content: { answer: 'Ada' } } }, _meta: META });
    expect(retry.result!.resultType).toBe('complete');
    expect(JSON.stringify(retry.result!.content)).toContain('Ada');
  });

  it('subscriptions/listen acknowledges on stdout, tagged with its id', async () => {
    const id = nextId++;
    send({ id, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true }, _meta: META } });
    const ack = await lineWhere((l) => l.method === 'notifications/subscriptions/acknowledged', 'the acknowledgement');
    expect(ack.params).toMatchObject({ notifications: { toolsListChanged: true }, _meta: { 'io.modelcontextprotocol/subscriptionId': id } });
  });

  it('a client that initializes instead gets a 2025-11-25 session on the same process', async () => {
    const init = await request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'legacy', version: '1' } });
    expect((init.result as { protocolVersion: string }).protocolVersion).toBe('2025-11-25');
    send({ method: 'notifications/initialized' });
    const list = await request('tools/list', {});
    expect((list.result!.tools as Array<{ name: string }>).map((t) => t.name)).toContain('fx__echo');
    expect(list.result!.resultType).toBeUndefined();
  });
});
