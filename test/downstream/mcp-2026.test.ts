// The 2026-07-28 adapter's pieces in-process: the revision choice, the validation ladder's order and errors,
// the envelope the upstream never sees, result decoration, workflow choice by trace, and lanes going idle.
import { describe, expect, it, vi } from 'vitest';
import type { IncomingHttpHeaders } from 'node:http';
import { claimsModern, isRejection, validateModern, withoutEnvelope } from '../../src/downstream/mcp-2026/envelope.js';
import { decorate } from '../../src/downstream/mcp-2026/reply.js';
import { Lanes, workflowOf } from '../../src/downstream/mcp-2026/lanes.js';
import { readFilter } from '../../src/downstream/mcp-2026/listen.js';
import { InputBridge } from '../../src/downstream/mcp-2026/bridge.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import type { Caller } from '../../src/gateway/types.js';

const LEGACY = ['2025-11-25', '2025-06-18'];
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { sampling: {} } };
const H = (extra: Record<string, string> = {}): IncomingHttpHeaders => ({ 'mcp-protocol-version': '2026-07-28', ...extra });
const caller = (agentId: string, extra: Partial<Caller> = {}): Caller => ({ agentId, principal: `p-${agentId}`, chain: [agentId], via: 'apikey', ...extra });

describe('which revision a POST speaks', () => {
  it('the _meta claim decides, even for initialize; a legacy session and its header stay legacy', () => {
    expect(claimsModern({}, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: META } }, LEGACY)).toBe(true);
    expect(claimsModern({}, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { _meta: META } }, LEGACY)).toBe(true);
    expect(claimsModern({}, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25' } }, LEGACY)).toBe(false);
    expect(claimsModern({ 'mcp-protocol-version': '2025-11-25' }, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, LEGACY)).toBe(false);
    expect(claimsModern({ 'mcp-session-id': 's', 'mcp-protocol-version': '2026-07-28' }, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, LEGACY)).toBe(false);
    // A modern header without the envelope is a modern request the ladder will refuse (-32602), not a legacy one.
    expect(claimsModern({ 'mcp-protocol-version': '2026-07-28' }, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, LEGACY)).toBe(true);
    expect(claimsModern({}, { jsonrpc: '2.0', id: 1, result: {} }, LEGACY)).toBe(false);
  });
});

describe('the validation ladder', () => {
  const codeOf = (v: ReturnType<typeof validateModern>) => (isRejection(v) ? [v.status, v.body.error?.code] : 'ok');

  it('accepts a conformant request and reads its envelope', () => {
    const v = validateModern(H({ 'mcp-method': 'tools/call', 'mcp-name': 'a' }), 1, 'tools/call', { name: 'a', _meta: { ...META, 'io.modelcontextprotocol/logLevel': 'info' } });
    expect(isRejection(v)).toBe(false);
    if (!isRejection(v)) expect([v.clientCapabilities, v.clientInfo.name, v.logLevel]).toEqual([{ sampling: {} }, 'unknown', 'info']);
  });

  it('checks headers before _meta, and the header version before the supported version', () => {
    expect(codeOf(validateModern(H(), 1, 'tools/list', {}))).toEqual([400, -32020]); // no Mcp-Method
    expect(codeOf(validateModern(H({ 'mcp-method': 'tools/list' }), 1, 'tools/list', {}))).toEqual([400, -32602]);
    expect(codeOf(validateModern(H({ 'mcp-method': 'tools/call' }), 1, 'tools/call', { name: 'x', _meta: META }))).toEqual([400, -32020]); // no Mcp-Name
    const v999 = { ...META, 'io.modelcontextprotocol/protocolVersion': 'v999' };
    expect(codeOf(validateModern(H({ 'mcp-method': 'server/discover' }), 1, 'server/discover', { _meta: v999 }))).toEqual([400, -32020]);
    const unsupported = validateModern({ 'mcp-protocol-version': 'v999', 'mcp-method': 'server/discover' }, 9, 'server/discover', { _meta: v999 });
    expect(codeOf(unsupported)).toEqual([400, -32022]);
    if (isRejection(unsupported)) expect([unsupported.body.id, unsupported.body.error?.data]).toEqual([9, { supported: ['2026-07-28'], requested: 'v999' }]);
  });

  it('says which envelope fields are missing or of the wrong type', () => {
    const v = validateModern(H({ 'mcp-method': 'tools/list' }), 1, 'tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': [] } });
    expect(isRejection(v) && v.body.error?.message).toContain('clientCapabilities');
  });
});

describe('what passes upstream and back', () => {
  it('drops only the consumed envelope keys', () => {
    expect(withoutEnvelope({ name: 'a', _meta: { ...META, progressToken: 7, 'io.modelcontextprotocol/logLevel': 'debug' } })).toEqual({ name: 'a', _meta: { progressToken: 7, 'io.modelcontextprotocol/logLevel': 'debug' } });
    expect(withoutEnvelope({ name: 'a', _meta: META })).toEqual({ name: 'a' });
  });

  it('decorates results with resultType, identity, workflow and, for lists, cache hints; keeps an upstream input_required', () => {
    const opts = { method: 'tools/list', workflowId: 'wf-1', serverInfo: { name: 'switchyard', version: '0' } };
    const r = decorate({ jsonrpc: '2.0', id: 1, result: { tools: [] } }, opts).result as Record<string, unknown>;
    expect(r).toMatchObject({ resultType: 'complete', ttlMs: 0, cacheScope: 'private', _meta: { 'io.switchyard/workflowId': 'wf-1', 'io.modelcontextprotocol/serverInfo': { name: 'switchyard' } } });
    const call = decorate({ jsonrpc: '2.0', id: 1, result: { resultType: 'input_required', requestState: 's' } }, { ...opts, method: 'tools/call' }).result as Record<string, unknown>;
    expect([call.resultType, call.requestState, 'ttlMs' in call]).toEqual(['input_required', 's', false]);
    const err = decorate({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'x' } }, opts);
    expect(err.error?.data).toEqual({ workflowId: 'wf-1' });
  });

  it('reads a listen filter and refuses a missing one', () => {
    expect([...(readFilter(1, { notifications: { toolsListChanged: true, promptsListChanged: false } }) as Set<string>)]).toEqual(['tools']);
    expect((readFilter(1, {}) as { error?: { code: number } }).error?.code).toBe(-32602);
  });
});

describe('workflows without sessions', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  it('joins one workflow per agent and trace, never another agent’s', () => {
    const a1 = workflowOf(caller('a'), undefined, tp, undefined);
    const a2 = workflowOf(caller('a'), undefined, tp.replace('b7ad', 'c8be'), undefined);
    const b = workflowOf(caller('b'), undefined, tp, undefined);
    expect(a1.workflowId).toMatch(/^trace-[0-9a-f]{32}$/);
    expect(a2.workflowId).toBe(a1.workflowId); // another span of the same trace
    expect(b.workflowId).not.toBe(a1.workflowId);
    expect(workflowOf(caller('a'), undefined, 'not-a-traceparent', undefined)).toEqual({ ok: true, workflowId: undefined, traceparent: undefined });
  });

  it('a delegated token keeps its own workflow and refuses another named one', () => {
    expect(workflowOf(caller('a', { workflowId: 'wf-d' }), undefined, tp, undefined).workflowId).toBe('wf-d');
    expect(workflowOf(caller('a', { workflowId: 'wf-d' }), 'wf-other', undefined, undefined).ok).toBe(false);
    expect(workflowOf(caller('a'), 'wf-named', tp, () => true).workflowId).toBe('wf-named');
  });
});

describe('lanes', () => {
  it('share one id per caller, view and capabilities, and release upstream sessions only once idle', async () => {
    const released: string[] = [];
    const gw = { pools: new Map([['s', { release: async (id: string) => void released.push(id) }]]) } as unknown as Gateway;
    const lanes = new Lanes(gw, 1000);
    const meta = { protocolVersion: '2026-07-28', clientCapabilities: {}, clientInfo: { name: 'c', version: '1' } };
    const one = lanes.enter(caller('a'), {}, meta, () => {});
    const two = lanes.enter(caller('a'), {}, meta, () => {});
    const other = lanes.enter(caller('a'), {}, { ...meta, clientCapabilities: { sampling: {} } }, () => {});
    expect(two.id).toBe(one.id);
    expect(other.id).not.toBe(one.id);
    one.done();
    await lanes.reap(Date.now() + 5000);
    expect(released).toEqual([]); // both lanes still have a request in flight
    two.done();
    other.done();
    await lanes.reap(Date.now() + 500);
    expect(released).toEqual([]); // not idle long enough
    await lanes.reap(Date.now() + 5000);
    expect(released.sort()).toEqual([one.id, other.id].sort());
    expect(lanes.size).toBe(0);
    await lanes.close();
  });
});

describe('the input_required bridge', () => {
  const setup = () => {
    const answers: unknown[] = [];
    const session = { answer: (r: unknown) => (answers.push(r), true) } as unknown as import('../../src/gateway/client-session.js').ClientSession;
    const retargets: unknown[] = [];
    const reply = { answered: true, retarget: (id: unknown) => void retargets.push(id) };
    const bridge = new InputBridge(60_000);
    const upstream = { jsonrpc: '2.0' as const, id: 'sy-1', method: 'elicitation/create', params: { message: 'q' } };
    const result = bridge.hold(reply, session, upstream, caller('a'), {}, 'tools/call', 'srv__tool');
    const state = String(result.requestState);
    const key = Object.keys(result.inputRequests as object)[0]!;
    const sink = { send: () => {}, inner: { related() {}, final() {}, gone: false }, asked: (r: Record<string, unknown>) => void retargets.push(r) };
    return { answers, retargets, bridge, state, key, sink };
  };

  it('binds state to the caller and the target, and forgets it when the call ends', () => {
    const { bridge, state, key, sink, answers } = setup();
    const params = (name: string) => ({ name, inputResponses: { [key]: { action: 'accept' } } });
    expect(bridge.resume(state, params('srv__tool'), caller('b'), {}, 'tools/call', 2, sink).ok).toBe(false);
    expect(bridge.resume(state, params('srv__other'), caller('a'), {}, 'tools/call', 2, sink).ok).toBe(false);
    expect(bridge.resume(state, params('srv__tool'), caller('a'), { single: 'srv' }, 'tools/call', 2, sink).ok).toBe(false);
    expect(answers).toEqual([]); // nothing reached the upstream
    bridge.forget({ answered: false, retarget: () => {} }); // another call's reply: no effect
    expect(bridge.size).toBe(1);
    const { bridge: b2, state: s2, key: k2, sink: sink2 } = setup();
    const held = (b2 as unknown as { held: Map<string, { reply: unknown }> }).held;
    b2.forget([...held.values()][0]!.reply as never);
    const after = b2.resume(s2, { name: 'srv__tool', inputResponses: { [k2]: { action: 'accept' } } }, caller('a'), {}, 'tools/call', 2, sink2);
    expect(after.ok).toBe(false);
    bridge.close();
  });

  it('answers the held request once, with the response under its key', () => {
    const { bridge, state, key, sink, answers, retargets } = setup();
    const ok = bridge.resume(state, { name: 'srv__tool', inputResponses: { [key]: { action: 'accept', content: { a: 1 } } } }, caller('a'), {}, 'tools/call', 7, sink);
    expect(ok.ok).toBe(true);
    expect(retargets).toEqual([7]);
    expect(answers).toEqual([{ jsonrpc: '2.0', id: 'sy-1', result: { action: 'accept', content: { a: 1 } } }]);
    expect(bridge.resume(state, { name: 'srv__tool', inputResponses: { [key]: { action: 'accept' } } }, caller('a'), {}, 'tools/call', 8, sink).ok).toBe(false);
  });
});

describe('an upstream’s own requestState inside gateway-minted state', () => {
  const upstreamState = 'eyJ0b29sIjoieCJ9.c2lnbmVk==/+';

  it('comes back byte for byte for the same caller, view and target, and expires after the hold window', () => {
    vi.useFakeTimers();
    try {
      const bridge = new InputBridge(60_000);
      const wrapped = bridge.wrap(upstreamState, caller('a'), {}, 'tools/call', 'srv__tool');
      expect(wrapped.startsWith('sy2.')).toBe(true);
      expect(wrapped).not.toContain(upstreamState);
      expect(bridge.unwrap(wrapped, caller('a'), {}, 'tools/call', 'srv__tool', 1)).toEqual({ ok: true, state: upstreamState });
      for (const [who, view, method, name] of [
        [caller('b'), {}, 'tools/call', 'srv__tool'],
        [caller('a'), { single: 'srv' }, 'tools/call', 'srv__tool'],
        [caller('a'), {}, 'prompts/get', 'srv__tool'],
        [caller('a'), {}, 'tools/call', 'srv__other'],
      ] as const) {
        const r = bridge.unwrap(wrapped, who, view, method, name, 1);
        expect(r.ok).toBe(false);
      }
      // Another gateway process (another key) did not mint it.
      expect(new InputBridge(60_000).unwrap(wrapped, caller('a'), {}, 'tools/call', 'srv__tool', 1).ok).toBe(false);
      vi.advanceTimersByTime(60_001);
      const late = bridge.unwrap(wrapped, caller('a'), {}, 'tools/call', 'srv__tool', 9);
      expect(late.ok).toBe(false);
      if (!late.ok) expect([late.status, late.body.id, late.body.error?.message]).toEqual([400, 9, 'Invalid requestState: it is older than 60 s. Start the request again without requestState.']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses malformed state with the reason, never throwing', () => {
    const bridge = new InputBridge(60_000);
    for (const given of ['sy2.', 'sy2.a.b', 'sy2.a.b.c.d', 'sy1.x.y', 'plain', 7, null, { s: 1 }]) {
      const r = bridge.unwrap(given, caller('a'), {}, 'tools/call', 'srv__tool', 1);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.body.error?.data).toEqual({ reason: 'invalid_request_state' });
    }
  });
});
