// Upstream failures as data, rendered once: the agent's sentence, the operator's line, network causes named.
import { describe, expect, it } from 'vitest';
import { agentMessage, describeNetworkError, relayedError, relayedMessage, startFailureLine, unavailable, UpstreamError, withoutMcpPrefix } from '../../src/upstream/errors.js';

describe('agentMessage', () => {
  it('one cause and one hint, whatever the cause', () => {
    expect(agentMessage(new UpstreamError('x', 'exited', 'it exited with code 1'))).toBe("Upstream 'x' is unavailable: it exited with code 1. The gateway reconnects with backoff; retry shortly.");
    expect(agentMessage(new UpstreamError('x', 'backoff', 'it failed 6 times in a row', { retryInS: 8 }))).toBe("Upstream 'x' is unavailable: it failed 6 times in a row; the next attempt is in 8 s, retry then.");
    expect(agentMessage(new UpstreamError('x', 'timeout', 'slow', { method: 'tools/call', timeoutMs: 1000 }))).toBe(
      "Upstream 'x' did not answer tools/call within 1000 ms; raise timeoutMs in its manifest if it is legitimately slow.",
    );
  });

  it('the JSON-RPC error carries the reason and the server, and a timeout its limit', () => {
    expect(unavailable(3, new UpstreamError('x', 'closed', 'its session was closed')).error?.data).toEqual({ reason: 'upstream_unavailable', server: 'x' });
    expect(unavailable(3, new UpstreamError('x', 'timeout', 'slow', { method: 'm', timeoutMs: 5 })).error?.data).toEqual({ reason: 'upstream_timeout', server: 'x', timeoutMs: 5 });
  });
});

describe('the operator line', () => {
  it('has the specifics (URLs masked) and the manifest field to check', () => {
    const e = new UpstreamError('x', 'unreachable', 'connection refused (ECONNREFUSED)', { operator: 'http://u:p@h:1/mcp?k=v is unreachable', field: '`url`' });
    expect(startFailureLine(e, '/etc/switchyard/servers.d/x.yaml')).toBe("upstream 'x' could not start: http://***@h:1/mcp?k=*** is unreachable; check /etc/switchyard/servers.d/x.yaml `url`");
  });
});

describe('describeNetworkError', () => {
  it('finds the code on the error, its causes, or in its text', () => {
    expect(describeNetworkError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('connection refused (ECONNREFUSED)');
    expect(describeNetworkError(new TypeError('fetch failed', { cause: Object.assign(new Error('y'), { code: 'ENOTFOUND' }) }))).toBe('host not found (ENOTFOUND)');
    expect(describeNetworkError(new Error('SSE error: TypeError: fetch failed: connect ECONNREFUSED 127.0.0.1:1'))).toBe('connection refused (ECONNREFUSED)');
    expect(describeNetworkError(new Error('getaddrinfo EAI_AGAIN example.com'))).toBe('host name lookup failed (EAI_AGAIN)');
    expect(describeNetworkError(new Error('something else'))).toBe('network error');
  });
});

describe('relayed upstream messages', () => {
  it('lose every SDK prefix and are capped', () => {
    expect(withoutMcpPrefix('MCP error -32602: MCP error -32602: bad')).toBe('bad');
    expect(withoutMcpPrefix('MCP errors are fine')).toBe('MCP errors are fine');
    expect(relayedMessage(`MCP error -32603: ${'y'.repeat(600)}`)).toBe(`${'y'.repeat(500)}…`);
  });
});

describe('relayedError', () => {
  it("turns an SDK schema rejection (-32603 with the issue list) into -32602 with one sentence", () => {
    const issues = [{ code: 'invalid_type', path: ['params', 'arguments'], message: 'Invalid input: expected record, received string' }];
    const e = { code: -32603, message: JSON.stringify(issues, null, 2) };
    relayedError(e);
    expect(e).toEqual({ code: -32602, message: 'Invalid params: params.arguments: Invalid input: expected record, received string.' });
  });

  it('leaves other errors their code, without the SDK prefix', () => {
    const e = { code: -32603, message: 'MCP error -32603: [not json' };
    relayedError(e);
    expect(e).toEqual({ code: -32603, message: '[not json' });
  });
});
