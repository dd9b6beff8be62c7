/**
 * Relays a provider's SSE stream event by event as it arrives, reading what the gateway needs on the way: usage,
 * finish reason, the output text (to estimate tokens when no usage comes). The usage chunk the gateway asked for is
 * dropped for a client that did not ask. After the client leaves, the stream is still read to its end (bounded).
 */
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { ModelProvider } from '../../config/types.js';
import { anthropicUsage, openaiUsage, type ModelUsage } from './usage.js';

export interface StreamRelayOptions {
  format: ModelProvider;
  /** Drop OpenAI's usage-only chunk: the client did not set stream_options.include_usage. */
  hideUsage: boolean;
  /** Writes to the client; returns false once the client is gone. */
  write: (text: string) => boolean;
  /** Most bytes read once the client is gone. */
  maxDrainBytes: number;
  /** Output text kept for estimation and `audit.modelBodies` (longer output is cut, estimates then scale by bytes). */
  maxTextChars?: number;
}

export interface StreamResult {
  usage?: ModelUsage;
  finishReason?: string;
  /** Output text seen (cut at maxTextChars). */
  text: string;
  /** Characters of output seen, beyond those kept too. */
  textChars: number;
  /** performance.now() of the first event that carried output. */
  firstTokenAt?: number;
  /** The provider ended the stream properly ([DONE] or message_stop). */
  complete: boolean;
  /** Why reading stopped early, when it did. */
  error?: string;
  bytes: number;
}

type Json = Record<string, unknown>;

function parse(data: string): Json | undefined {
  try {
    const v: unknown = JSON.parse(data);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

/** The `data:` payload of one SSE event (several data lines join with newlines). */
function dataOf(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split('\n')) {
    if (!line.startsWith('data:')) continue;
    const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === undefined ? v : `${data}\n${v}`;
  }
  return data;
}

export async function relayStream(res: IncomingMessage, opts: StreamRelayOptions): Promise<StreamResult> {
  const maxText = opts.maxTextChars ?? 1_000_000;
  const out: StreamResult = { text: '', textChars: 0, complete: false, bytes: 0 };
  let clientGone = false;
  let drained = 0;
  let pending = '';
  // A multi-byte character may be split across chunks.
  const decoder = new StringDecoder('utf8');
  const addText = (t: unknown) => {
    if (typeof t !== 'string' || t.length === 0) return false;
    out.textChars += t.length;
    if (out.text.length < maxText) out.text += t.slice(0, maxText - out.text.length);
    return true;
  };

  /** Reads one event; returns whether the client should see it. */
  const observe = (event: string): boolean => {
    const data = dataOf(event);
    if (data === undefined) return true;
    if (opts.format === 'openai') {
      if (data === '[DONE]') {
        out.complete = true;
        return true;
      }
      const chunk = parse(data);
      if (!chunk) return true;
      const usage = openaiUsage(chunk.usage);
      if (usage) out.usage = usage;
      const choices = Array.isArray(chunk.choices) ? (chunk.choices as Json[]) : [];
      let carried = false;
      for (const c of choices) {
        const delta = c?.delta as Json | undefined;
        if (delta) {
          carried = addText(delta.content) || carried;
          carried = addText(delta.refusal) || carried;
          if (Array.isArray(delta.tool_calls)) for (const tc of delta.tool_calls as Json[]) carried = addText((tc?.function as Json | undefined)?.arguments) || carried;
        }
        if (typeof c?.finish_reason === 'string') out.finishReason = c.finish_reason;
      }
      if (carried && out.firstTokenAt === undefined) out.firstTokenAt = performance.now();
      return !(opts.hideUsage && usage && choices.length === 0);
    }
    const ev = parse(data);
    if (!ev) return true;
    switch (ev.type) {
      case 'message_start':
        out.usage = anthropicUsage((ev.message as Json | undefined)?.usage, out.usage);
        break;
      case 'message_delta':
        out.usage = anthropicUsage(ev.usage, out.usage);
        if (typeof (ev.delta as Json | undefined)?.stop_reason === 'string') out.finishReason = (ev.delta as Json).stop_reason as string;
        break;
      case 'content_block_delta': {
        const d = ev.delta as Json | undefined;
        if ((addText(d?.text) || addText(d?.partial_json) || addText(d?.thinking)) && out.firstTokenAt === undefined) out.firstTokenAt = performance.now();
        break;
      }
      case 'message_stop':
        out.complete = true;
        break;
    }
    return true;
  };

  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      out.bytes += chunk.length;
      if (clientGone) {
        drained += chunk.length;
        if (drained > opts.maxDrainBytes) {
          out.error = `the stream went on past ${opts.maxDrainBytes} bytes after the client left`;
          res.destroy();
          break;
        }
      }
      pending += decoder.write(chunk).replace(/\r\n/g, '\n');
      const cut = pending.lastIndexOf('\n\n');
      if (cut < 0) continue;
      const complete = pending.slice(0, cut + 2);
      pending = pending.slice(cut + 2);
      let shown = '';
      let start = 0;
      while (start < complete.length) {
        const end = complete.indexOf('\n\n', start);
        const event = complete.slice(start, end + 2);
        start = end + 2;
        if (observe(event.slice(0, -2))) shown += event;
      }
      if (!clientGone && shown.length > 0 && !opts.write(shown)) clientGone = true;
    }
  } catch (err) {
    out.error = `the provider's stream broke off (${(err as Error).message})`;
  }
  if (!out.complete && !out.error) out.error = pending.length > 0 ? "the provider's stream stopped in the middle of an event" : "the provider's stream ended without its final event";
  return out;
}
