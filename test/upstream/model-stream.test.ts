// The provider stream relay, in-process: events relayed unchanged as they complete (also when split across chunks
// or inside a UTF-8 character), the usage-only chunk dropped for a client that did not ask, usage and finish reason
// read in both formats, the rest read after the client left, and a stream that breaks off reported as such.
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { relayStream } from '../../src/upstream/models/stream.js';

/** A provider response that delivers each piece as its own chunk, a turn of the event loop apart. */
function upstream(chunks: Array<string | Buffer>, opts: { breakOff?: boolean } = {}): IncomingMessage {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (const c of chunks) {
      yield typeof c === 'string' ? Buffer.from(c) : c;
      await new Promise((r) => setImmediate(r));
    }
    if (opts.breakOff) throw new Error('socket hang up');
  }
  return Readable.from(pieces(), { objectMode: false }) as unknown as IncomingMessage;
}

const chunk = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const text = (t: string) => chunk({ choices: [{ index: 0, delta: { content: t }, finish_reason: null }], usage: null });
const usage = chunk({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 2 } } });

describe('relayStream (openai)', () => {
  it('relays events unchanged, drops the usage chunk when hidden, and reads usage and finish reason', async () => {
    const written: string[] = [];
    const stop = chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    const r = await relayStream(upstream([text('Hel') + text('lo'), stop, usage, 'data: [DONE]\n\n']), { format: 'openai', hideUsage: true, write: (t) => (written.push(t), true), maxDrainBytes: 1e6 });
    expect(written.join('')).toBe(text('Hel') + text('lo') + stop + 'data: [DONE]\n\n');
    expect(r).toMatchObject({ complete: true, finishReason: 'stop', text: 'Hello', usage: { input: 9, output: 3, cachedInput: 2 } });
    expect(r.firstTokenAt).toBeTypeOf('number');
  });

  it('keeps the usage chunk for a client that asked', async () => {
    const written: string[] = [];
    await relayStream(upstream([text('a'), usage, 'data: [DONE]\n\n']), { format: 'openai', hideUsage: false, write: (t) => (written.push(t), true), maxDrainBytes: 1e6 });
    expect(written.join('')).toContain('"prompt_tokens":9');
  });

  it('joins an event split across chunks, and a UTF-8 character split across chunks', async () => {
    const whole = Buffer.from(text('héllo wörld') + 'data: [DONE]\n\n');
    const cut = whole.indexOf(Buffer.from('ö')) + 1; // inside the two bytes of ö
    const written: string[] = [];
    const r = await relayStream(upstream([whole.subarray(0, 10), whole.subarray(10, cut), whole.subarray(cut)]), { format: 'openai', hideUsage: true, write: (t) => (written.push(t), true), maxDrainBytes: 1e6 });
    expect(written.join('')).toBe(whole.toString('utf8'));
    expect(r.text).toBe('héllo wörld');
  });

  it('after the client left, reads the stream to its end for the usage', async () => {
    let writes = 0;
    const r = await relayStream(upstream([text('a'), text('b'), usage, 'data: [DONE]\n\n']), { format: 'openai', hideUsage: true, write: () => (writes++, false), maxDrainBytes: 1e6 });
    expect(writes).toBe(1);
    expect(r).toMatchObject({ complete: true, usage: { input: 9, output: 3 } });
  });

  it('stops draining past maxDrainBytes after the client left', async () => {
    const many = Array.from({ length: 50 }, () => text('x'.repeat(100)));
    const r = await relayStream(upstream([...many, 'data: [DONE]\n\n']), { format: 'openai', hideUsage: true, write: () => false, maxDrainBytes: 1000 });
    expect(r.complete).toBe(false);
    expect(r.error).toMatch(/past 1000 bytes after the client left/);
  });

  it('a stream that breaks off mid-event is incomplete, with what it said so far', async () => {
    const r = await relayStream(upstream([text('Hel'), 'data: {"choices":[{"delta":{"content":"lo'], { breakOff: true }), { format: 'openai', hideUsage: true, write: () => true, maxDrainBytes: 1e6 });
    expect(r.complete).toBe(false);
    expect(r.text).toBe('Hel');
    expect(r.error).toMatch(/broke off/);
  });
});

describe('relayStream (anthropic)', () => {
  it('reads input usage from message_start, output and stop reason from message_delta', async () => {
    const ev = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const r = await relayStream(
      upstream([
        ev('message_start', { message: { usage: { input_tokens: 5, cache_read_input_tokens: 3, cache_creation_input_tokens: 2, output_tokens: 1 } } }),
        ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hi' } }),
        ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 4 } }),
        ev('message_stop', {}),
      ]),
      { format: 'anthropic', hideUsage: false, write: () => true, maxDrainBytes: 1e6 },
    );
    expect(r).toMatchObject({ complete: true, finishReason: 'end_turn', text: 'Hi', usage: { input: 10, output: 4, cachedInput: 3 } });
  });
});
