import { describe, expect, it } from 'vitest';
import type { RpcMessage, RpcResponse } from '../../src/util/jsonrpc.js';
import { keepWire, markList, wireWithId } from '../../src/util/raw-response.js';

/** Parse as a transport does and keep the text. */
function arrived(text: string): RpcResponse {
  const msg = JSON.parse(text) as RpcMessage;
  keepWire(msg, text);
  return msg as RpcResponse;
}

describe('a relayed response keeps its wire text', () => {
  it('swaps only the id, whether the text puts it last (the SDK) or first', () => {
    const last = arrived('{"result":{"n":1.50,"e":1e2},"jsonrpc":"2.0","id":7}');
    expect(wireWithId({ ...last, id: 'client-1' })).toBe('{"result":{"n":1.50,"e":1e2},"jsonrpc":"2.0","id":"client-1"}');
    const first = arrived('{"jsonrpc":"2.0","id":"u-3","result":{"text":"\\u00e9"}}');
    expect(wireWithId({ ...first, id: 12 })).toBe('{"jsonrpc":"2.0","id":12,"result":{"text":"\\u00e9"}}');
  });

  it('an "id" inside the result is not taken for the envelope\'s', () => {
    const msg = arrived('{"result":{"id":7},"jsonrpc":"2.0","id":7}');
    expect(wireWithId({ ...msg, id: 1 })).toBe('{"result":{"id":7},"jsonrpc":"2.0","id":1}');
    const inner = arrived('{"jsonrpc":"2.0","result":{"x":{"id":7}},"id":8}');
    expect(JSON.parse(wireWithId({ ...inner, id: 2 })!)).toEqual({ jsonrpc: '2.0', id: 2, result: { x: { id: 7 } } });
  });

  it('is serialized again once anything changed: a new result, an error, an extra field, unknown text', () => {
    const msg = arrived('{"result":{"a":1},"jsonrpc":"2.0","id":7}');
    expect(wireWithId({ ...msg, id: 1, result: { ...(msg.result as object) } })).toBeUndefined();
    expect(wireWithId({ ...msg, id: 1, error: { code: -1, message: 'x' } })).toBeUndefined();
    expect(wireWithId({ ...msg, id: 1, _meta: {} } as RpcResponse)).toBeUndefined();
    expect(wireWithId({ jsonrpc: '2.0', id: 1, result: { a: 1 } })).toBeUndefined();
    const spaced = arrived('{ "result": {"a":1}, "jsonrpc": "2.0", "id": 7 }');
    expect(wireWithId({ ...spaced, id: 1 })).toBeUndefined();
    const extra = arrived('{"result":{"a":1},"jsonrpc":"2.0","id":7,"x":1}');
    expect(wireWithId({ ...extra, id: 1 })).toBeUndefined();
  });

  it('a text on several lines does not go into one SSE data line', () => {
    const msg = arrived('{"result":{\n"a":1},"jsonrpc":"2.0","id":7}');
    expect(wireWithId({ ...msg, id: 1 })).toBe('{"result":{\n"a":1},"jsonrpc":"2.0","id":1}');
    expect(wireWithId({ ...msg, id: 1 }, true)).toBeUndefined();
  });
});

describe('a merged list is written from the kept text of each item', () => {
  const list = (tools: unknown[], nextCursor?: string): Record<string, unknown> => {
    const result: Record<string, unknown> = { tools };
    if (nextCursor !== undefined) result.nextCursor = nextCursor;
    markList(result, 'tools');
    return result;
  };

  it('writes what JSON.stringify writes, the cursor included, on one line', () => {
    const tools = [{ name: 'a__x', description: 'line one\nline two', inputSchema: { type: 'object' } }, { name: 'b__y', skipped: undefined }, 'odd', null];
    for (const result of [list(tools), list(tools, 'c1')]) {
      const msg: RpcResponse = { jsonrpc: '2.0', id: 'r-1', result };
      const text = wireWithId(msg, true)!;
      expect(text).toBeDefined();
      expect(text).not.toContain('\n');
      expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(msg)));
    }
  });

  it('serializes an item once, however many lists it is in', () => {
    let reads = 0;
    const item = { name: 'a__x', get description() {
      reads++;
      return 'counted';
    } };
    const first = wireWithId({ jsonrpc: '2.0', id: 1, result: list([item]) })!;
    const second = wireWithId({ jsonrpc: '2.0', id: 2, result: list([item, { name: 'b__y' }]) })!;
    expect(reads).toBe(1);
    expect(JSON.parse(first).result.tools).toEqual([{ name: 'a__x', description: 'counted' }]);
    expect(JSON.parse(second)).toEqual({ jsonrpc: '2.0', id: 2, result: { tools: [{ name: 'a__x', description: 'counted' }, { name: 'b__y' }] } });
  });

  it('is serialized as usual when the result is not a marked list or has another shape', () => {
    expect(wireWithId({ jsonrpc: '2.0', id: 1, result: { tools: [] } })).toBeUndefined();
    const decorated = list([{ name: 'a' }]);
    decorated._meta = { x: 1 };
    expect(wireWithId({ jsonrpc: '2.0', id: 1, result: decorated })).toBeUndefined();
    const notString = list([{ name: 'a' }]);
    notString.nextCursor = 5;
    expect(wireWithId({ jsonrpc: '2.0', id: 1, result: notString })).toBeUndefined();
    expect(wireWithId({ jsonrpc: '2.0', id: { bad: true } as unknown as number, result: list([]) })).toBeUndefined();
  });
});
