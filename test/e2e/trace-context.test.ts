// Trace context crosses to every upstream in the way its transport can carry it: the traceparent header over
// HTTP, `_meta.traceparent` over stdio (which has no headers), and only on the call that carries it.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectClient,
  fixtureManifest,
  readStats,
  scratch,
  startFixture,
  startGateway,
  stopAll,
  textOf,
  waitFor,
  type RunningGateway,
} from '../helpers/gateway.js';

const dir = scratch('switchyard-trace-');
const statsStdio = join(dir, 'stdio.jsonl');
const statsHttp = join(dir, 'http.jsonl');
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
let gw: RunningGateway;

beforeAll(async () => {
  const http = await startFixture('http', ['--stats-file', statsHttp]);
  gw = await startGateway({
    servers: {
      fx: fixtureManifest({}, ['--stats-file', statsStdio]),
      fxh: { transport: 'http', url: http.url },
    },
  });
}, 60_000);

afterAll(stopAll);

const callsTo = (file: string, a: number) => readStats(file).filter((l) => l.method === 'tools/call' && (l.params as { arguments?: { a?: number } })?.arguments?.a === a);

describe('trace context', () => {
  it('reaches a stdio upstream in _meta and an HTTP upstream as a header, beside the call’s own _meta', async () => {
    const client = await connectClient(gw.mcpUrl, { headers: { traceparent: TRACEPARENT } });
    for (const server of ['fx', 'fxh']) {
      const res = await client.callTool({ name: `${server}__add`, arguments: { a: 41, b: 1 }, _meta: { progressToken: `t-${server}` } });
      expect(textOf(res)).toBe('42');
    }
    await waitFor(() => callsTo(statsStdio, 41).length > 0, { what: 'the stdio call in its stats file' });
    await waitFor(() => callsTo(statsHttp, 41).length > 0, { what: 'the HTTP call in its stats file' });
    const [stdioCall] = callsTo(statsStdio, 41);
    expect(stdioCall!.params?._meta).toMatchObject({ traceparent: TRACEPARENT });
    expect(stdioCall!.params?._meta?.progressToken).toBeDefined();
    const [httpCall] = callsTo(statsHttp, 41);
    expect(httpCall!.headers?.traceparent).toBe(TRACEPARENT);
    expect(httpCall!.params?._meta?.traceparent).toBeUndefined();
    await client.close();
  });

  it('a session without trace context sends none', async () => {
    const client = await connectClient(gw.mcpUrl);
    expect(textOf(await client.callTool({ name: 'fx__add', arguments: { a: 7, b: 1 } }))).toBe('8');
    expect(textOf(await client.callTool({ name: 'fxh__add', arguments: { a: 7, b: 1 } }))).toBe('8');
    await waitFor(() => callsTo(statsHttp, 7).length > 0, { what: 'the HTTP call in its stats file' });
    await waitFor(() => callsTo(statsStdio, 7).length > 0, { what: 'the stdio call in its stats file' });
    expect(callsTo(statsStdio, 7)[0]!.params?._meta?.traceparent).toBeUndefined();
    expect(callsTo(statsHttp, 7)[0]!.headers?.traceparent).toBeUndefined();
    await client.close();
  });
});
