import { describe, expect, it } from 'vitest';
import type { RpcMessage, RpcResponse } from '../../src/util/jsonrpc.js';
import { keepWire, wireWithId } from '../../src/util/raw-response.js';

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
