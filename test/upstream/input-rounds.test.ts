// driveInputRequired in-process: how a modern upstream's input_required is asked of the caller and retried.
import { describe, expect, it } from 'vitest';
import { driveInputRequired, INPUT_RELAYED, isInputRound, MAX_INPUT_ROUNDS } from '../../src/upstream/modern.js';
import type { CallHooks } from '../../src/upstream/session.js';
import type { Params, RpcRequest, RpcResponse } from '../../src/util/jsonrpc.js';

const elicit = { method: 'elicitation/create', params: { message: 'Name?' } };
const needs = (requestState?: string, inputRequests: Record<string, unknown> = { who: elicit }): RpcResponse => ({
  jsonrpc: '2.0',
  id: 1,
  result: { resultType: 'input_required', inputRequests, ...(requestState !== undefined ? { requestState } : {}) },
});
const done: RpcResponse = { jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'ok' }] } };

describe('driving input_required for a caller that cannot take it', () => {
  it('asks each request marked (invisibly on the wire), then retries with the answers and the upstream’s state only', async () => {
    const asked: RpcRequest[] = [];
    const hooks: CallHooks = { onServerRequest: async (r) => (asked.push(r), { jsonrpc: '2.0', id: r.id, result: { action: 'accept', content: { name: 'Ada' } } }) };
    const sent: Params[] = [];
    const answers = [needs(undefined, { roots: { method: 'roots/list' } }), done];
    const res = await driveInputRequired(needs('st-1'), { name: 't', arguments: { a: 1 } }, hooks, async (p) => (sent.push(p), answers.shift()!));
    expect(res).toBe(done);
    expect(asked.map((r) => r.method)).toEqual(['elicitation/create', 'roots/list']);
    expect(isInputRound(asked[0]!.params)).toBe(true);
    expect(JSON.parse(JSON.stringify(asked[0]!.params))).toEqual({ message: 'Name?' });
    const answer = { action: 'accept', content: { name: 'Ada' } };
    // Round two had no requestState: the first round's is not sent again.
    expect(sent).toEqual([
      { name: 't', arguments: { a: 1 }, inputResponses: { who: answer }, requestState: 'st-1' },
      { name: 't', arguments: { a: 1 }, inputResponses: { roots: answer } },
    ]);
  });

  it('returns the input_required untouched when the caller relays it (a 2026-07-28 client)', async () => {
    const first = needs('st-1');
    const hooks: CallHooks = { onServerRequest: async (r) => ({ jsonrpc: '2.0', id: r.id, error: { code: -32603, message: 'relayed', data: { reason: INPUT_RELAYED } } }) };
    let resent = 0;
    expect(await driveInputRequired(first, { name: 't' }, hooks, async () => (resent++, done))).toBe(first);
    expect(resent).toBe(0);
  });

  it('fails the call with what the client said when it cannot answer', async () => {
    const hooks: CallHooks = { onServerRequest: async (r) => ({ jsonrpc: '2.0', id: r.id, error: { code: -32601, message: 'Method not found' } }) };
    const res = await driveInputRequired(needs(), { name: 't' }, hooks, async () => done);
    expect(res.error).toEqual({ code: -32601, message: 'The server needed elicitation/create from the client, which answered: Method not found' });
    expect(res.id).toBe(1);
  });

  it('stops an upstream that asks forever, a malformed request, and a cancelled call', async () => {
    let asks = 0;
    const hooks: CallHooks = { onServerRequest: async (r) => (asks++, { jsonrpc: '2.0', id: r.id, result: { action: 'decline' } }) };
    const forever = await driveInputRequired(needs('s'), {}, hooks, async () => needs('s'));
    expect(forever.error?.message).toMatch(new RegExp(`asked for client input ${MAX_INPUT_ROUNDS} times`));
    expect(asks).toBe(MAX_INPUT_ROUNDS);
    const malformed = await driveInputRequired(needs(undefined, { bad: { params: {} } }), {}, hooks, async () => done);
    expect(malformed.error?.message).toBe('The server\'s input request "bad" names no method; the call cannot go on.');
    const controller = new AbortController();
    controller.abort('client went away');
    const cancelled = await driveInputRequired(needs(), {}, { ...hooks, signal: controller.signal }, async () => done);
    expect(cancelled.error?.message).toBe('Request cancelled: client went away');
  });

  it('leaves complete results, errors and calls without a way to ask alone', async () => {
    const hooks: CallHooks = { onServerRequest: async () => done };
    expect(await driveInputRequired(done, {}, hooks, async () => needs())).toBe(done);
    const err: RpcResponse = { jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'bad' } };
    expect(await driveInputRequired(err, {}, hooks, async () => done)).toBe(err);
    const first = needs();
    expect(await driveInputRequired(first, {}, {}, async () => done)).toBe(first);
  });
});
