/**
 * The MCP adapter's answer to a guard's askHuman: the calling client through elicitation when it declared it and the
 * rule lets it (`approval: human`), otherwise the approval queue, with progress notifications while the call waits.
 */
import type { ApprovalQueue } from './approval-queue.js';
import type { HumanAnswer, HumanQuestion } from './types.js';

export interface McpAskerOptions {
  askClient?: (method: string, params: Record<string, unknown>) => Promise<Record<string, unknown>>;
  clientCapabilities?: Record<string, unknown>;
  signal?: AbortSignal;
  progress?: (message: string) => void;
  queue?: ApprovalQueue;
  /** How long the client has to answer an elicitation (the queue has its own timeout). */
  timeoutMs?: number;
  /** Longest question the client is shown; longer ones go to the queue, where the console shows them whole. */
  maxQuestionChars?: number;
}

/** What a human can still read in one elicitation message; longer questions are never cut, they go to the queue. */
export const MAX_QUESTION_CHARS = 4000;
const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/**
 * How to ask this client: `form` for clients that list elicitation modes (protocol 2025-11-25 and later), `untyped`
 * for older clients with `elicitation: {}` (which do not know `mode`), or undefined when it cannot show a form at all.
 */
export function elicitationStyle(capabilities: Record<string, unknown> | undefined): 'form' | 'untyped' | undefined {
  const e = capabilities?.elicitation;
  if (!e || typeof e !== 'object') return undefined;
  if ('form' in e) return 'form';
  return 'url' in e ? undefined : 'untyped';
}

class ElicitationTimeout extends Error {}

async function askClient(opts: McpAskerOptions, q: HumanQuestion, style: 'form' | 'untyped'): Promise<HumanAnswer> {
  const by = `client of ${q.step.caller.user ?? q.step.caller.agentId}`;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const params: Record<string, unknown> = { ...(style === 'form' ? { mode: 'form' } : {}), message: q.message, requestedSchema: q.schema };
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const giveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ElicitationTimeout()), timeoutMs);
    onAbort = () => reject(new Error('the call was cancelled'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const answer = await Promise.race([opts.askClient!('elicitation/create', params), giveUp]);
    const content = answer.content as Record<string, unknown> | undefined;
    if (answer.action === 'accept' && content?.approve === true) return { outcome: 'approved', by, via: 'client' };
    if (answer.action === 'decline') return { outcome: 'denied', by, reason: 'The user declined the call', via: 'client' };
    if (answer.action === 'cancel') return { outcome: 'cancelled', by, reason: 'The user dismissed the approval request', via: 'client' };
    return { outcome: 'denied', by, reason: 'The user did not approve the call', via: 'client' };
  } catch (err) {
    if (err instanceof ElicitationTimeout) return { outcome: 'expired', by: 'gateway', reason: `no answer within ${Math.round(timeoutMs / 1000)} s`, via: 'client' };
    if (opts.signal?.aborted) return { outcome: 'cancelled', by: 'client', reason: 'the call was cancelled', via: 'client' };
    return { outcome: 'denied', by: 'gateway', reason: `could not ask the user (${(err as Error).message})`, via: 'client' };
  } finally {
    clearTimeout(timer);
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
  }
}

async function askQueue(queue: ApprovalQueue, opts: McpAskerOptions, q: HumanQuestion): Promise<HumanAnswer> {
  try {
    const r = await queue.wait(q.step, { signal: opts.signal, progress: opts.progress });
    const outcome = r.state === 'pending' ? 'expired' : r.state;
    return { outcome, by: r.decidedBy, reason: r.reason, via: 'queue' };
  } catch (err) {
    return { outcome: 'unavailable', reason: `the approval queue failed (${(err as Error).message})`, via: 'queue' };
  }
}

export function mcpHumanAsker(opts: McpAskerOptions): (q: HumanQuestion) => Promise<HumanAnswer> {
  return async (q) => {
    if (opts.signal?.aborted) return { outcome: 'cancelled', by: 'client', reason: 'the call was cancelled before approval', via: 'none' };
    const style = opts.askClient ? elicitationStyle(opts.clientCapabilities) : undefined;
    const fits = q.message.length <= (opts.maxQuestionChars ?? MAX_QUESTION_CHARS);
    if (q.clientMayAnswer && style && fits) {
      const startedAt = Date.now();
      const answer = await askClient(opts, q, style);
      opts.queue?.recordDecision(q.step, answer, {}, startedAt);
      return answer;
    }
    if (opts.queue) return askQueue(opts.queue, opts, q);
    const why = !fits
      ? 'the arguments are too large to show in an approval prompt and no approval queue is configured'
      : q.clientMayAnswer
        ? 'this client cannot show an approval form (no elicitation capability) and no approval queue is configured; use a client that supports MCP elicitation'
        : 'the rule asks for the approval queue and none is configured';
    return { outcome: 'unavailable', reason: why, via: 'none' };
  };
}
