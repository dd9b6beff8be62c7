/** Guard: tools under an `approval: human` rule are forwarded only after the human accepts through MCP elicitation. */
import { PolicyResolver } from '../../identity/policy.js';
import type { GuardCheck, GuardContext, Refusal, Step } from '../types.js';

export interface ApprovalGuardOptions {
  /** The same resolver the policy guard uses. */
  policies?: PolicyResolver;
  /** How long to wait for the human before refusing. */
  timeoutMs?: number;
  /** Longest rendering of the arguments the human is shown; larger arguments are refused, never cut. */
  maxArgsChars?: number;
}

const APPROVAL_SCHEMA = Object.freeze({
  type: 'object',
  properties: { approve: { type: 'boolean', title: 'Approve this call' } },
  required: ['approve'],
});
/** What a human can still read in one approval message; the whole rendering is shown or the call is refused. */
export const MAX_APPROVAL_ARGS_CHARS = 4000;
/** Characters a prompt would not show as themselves: controls, bidi and zero-width formatting, line separators, private use. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}]/gu;

/**
 * How to ask this client: `form` for clients that list elicitation modes (protocol 2025-11-25 and later), `untyped`
 * for older clients with `elicitation: {}` (which do not know `mode`), or undefined when it cannot show a form at all.
 */
function elicitationStyle(capabilities: Record<string, unknown> | undefined): 'form' | 'untyped' | undefined {
  const e = capabilities?.elicitation;
  if (!e || typeof e !== 'object') return undefined;
  if ('form' in e) return 'form';
  return 'url' in e ? undefined : 'untyped';
}

function denied(tool: string, message: string): Refusal {
  return { reason: 'approval_denied', message, data: { tool } };
}

function escapeUnit(c: string): string {
  let out = '';
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** The arguments exactly as JSON, with every character that would not show as itself escaped, so nothing hides. */
export function renderApprovalArgs(args: Readonly<Record<string, unknown>> | undefined): string {
  return JSON.stringify(args ?? {}).replace(INVISIBLE, escapeUnit);
}

class ApprovalTimeout extends Error {}

async function askHuman(step: Step, ctx: GuardContext, timeoutMs: number, maxArgsChars: number): Promise<Refusal | undefined> {
  const tool = step.exposedName;
  const style = elicitationStyle(ctx.clientCapabilities);
  if (!ctx.askClient || !style) {
    return denied(
      tool,
      `${tool} needs a human's approval, but this client cannot show an approval form (no elicitation capability); ` +
        'use a client that supports MCP elicitation, or ask an admin to change the approval rule.',
    );
  }
  if (ctx.signal?.aborted) return denied(tool, `The call to ${tool} was cancelled before approval; it was not made.`);
  const shownArgs = renderApprovalArgs(step.args);
  if (shownArgs.length > maxArgsChars) {
    return denied(
      tool,
      `The arguments of ${tool} are too large to show for approval (${shownArgs.length} characters, at most ${maxArgsChars}), so it was not made; ` +
        'send smaller arguments, or ask an admin to change the approval rule.',
    );
  }
  const params: Record<string, unknown> = {
    ...(style === 'form' ? { mode: 'form' } : {}),
    message: `Agent ${step.caller.agentId} wants to call ${tool} with ${shownArgs}. Allow?`,
    requestedSchema: APPROVAL_SCHEMA,
  };
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const giveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ApprovalTimeout()), timeoutMs);
    onAbort = () => reject(new Error('the call was cancelled'));
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const answer = await Promise.race([ctx.askClient('elicitation/create', params), giveUp]);
    const content = answer.content as Record<string, unknown> | undefined;
    if (answer.action === 'accept' && content?.approve === true) return undefined;
    if (answer.action === 'decline') return denied(tool, `The user declined the call to ${tool}; it was not made.`);
    if (answer.action === 'cancel') return denied(tool, `The user dismissed the approval request for ${tool}; it was not made.`);
    return denied(tool, `The user did not approve the call to ${tool}; it was not made.`);
  } catch (err) {
    if (err instanceof ApprovalTimeout) {
      return denied(tool, `No answer to the approval request for ${tool} within ${Math.round(timeoutMs / 1000)} s; it was not made.`);
    }
    return denied(tool, `Could not ask the user to approve ${tool} (${(err as Error).message}); it was not made.`);
  } finally {
    clearTimeout(timer);
    if (onAbort) ctx.signal?.removeEventListener('abort', onAbort);
  }
}

/** Synchronous (returns undefined) for every call that needs no approval; a Promise only while the human decides. */
export function createApprovalGuard(opts: ApprovalGuardOptions = {}): GuardCheck {
  const policies = opts.policies ?? new PolicyResolver();
  const timeoutMs = opts.timeoutMs ?? 5 * 60_000;
  const maxArgsChars = opts.maxArgsChars ?? MAX_APPROVAL_ARGS_CHARS;
  return (step, ctx) => {
    if (step.kind !== 'tools/call') return undefined;
    const d = policies.forCaller(step.caller).checkToolCall(step.exposedName, step.args);
    return d.decision === 'approval' ? askHuman(step, ctx, timeoutMs, maxArgsChars) : undefined;
  };
}
