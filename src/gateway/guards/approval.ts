/**
 * Guard: tools under an `approval: human | console` rule are forwarded only after a human approves. The guard asks
 * through the neutral askHuman port; the adapter decides who answers (elicitation or the approval queue).
 */
import { PolicyResolver } from '../../identity/policy.js';
import type { GuardCheck, GuardContext, HumanAnswer, Refusal, Step } from '../types.js';
import { toolDecision } from './policy.js';

export interface ApprovalGuardOptions {
  /** The same resolver the policy guard uses. */
  policies?: PolicyResolver;
}

const APPROVAL_SCHEMA = Object.freeze({
  type: 'object',
  properties: { approve: { type: 'boolean', title: 'Approve this call' } },
  required: ['approve'],
});
/** Characters a prompt would not show as themselves: controls, bidi and zero-width formatting, line separators, private use. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}]/gu;

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

function refusalOf(tool: string, a: HumanAnswer): Refusal | undefined {
  const why = a.reason ? ` (${a.reason})` : '';
  const who = a.by ? ` by ${a.by}` : '';
  switch (a.outcome) {
    case 'approved':
      return undefined;
    case 'denied':
      return denied(tool, `The call to ${tool} was denied${who}${why}; it was not made.`);
    case 'expired':
      return denied(tool, `No decision on the approval request for ${tool} in time${why}; it was not made. Call again to ask again.`);
    case 'cancelled':
      return denied(tool, `The approval request for ${tool} was cancelled${why}; it was not made.`);
    default:
      return denied(tool, `${tool} needs a human's approval, but nobody could be asked${why}; it was not made. Ask an admin to change the approval rule.`);
  }
}

/** Asked as a method of the context, which may be an object of the adapter's own (its `this` kept). */
async function askHuman(step: Step, ctx: GuardContext & Required<Pick<GuardContext, 'askHuman'>>, clientMayAnswer: boolean): Promise<Refusal | undefined> {
  const tool = step.exposedName;
  const message = `Agent ${step.caller.agentId} wants to call ${tool} with ${renderApprovalArgs(step.args)}. Allow?`;
  return refusalOf(tool, await ctx.askHuman({ step, message, schema: APPROVAL_SCHEMA, clientMayAnswer }));
}

/** Whether a step is one the approval guard asks a human about (or refuses for want of one). */
export function needsApproval(policies: PolicyResolver, step: Step): boolean {
  return step.kind === 'tools/call' && toolDecision(policies, step).decision === 'approval';
}

/** Synchronous (returns undefined) for every call that needs no approval; a Promise only while the human decides. */
export function createApprovalGuard(opts: ApprovalGuardOptions = {}): GuardCheck {
  const policies = opts.policies ?? new PolicyResolver();
  return (step, ctx) => {
    if (step.kind !== 'tools/call') return undefined;
    const d = toolDecision(policies, step);
    if (d.decision !== 'approval') return undefined;
    if (!ctx.askHuman) return denied(step.exposedName, `${step.exposedName} needs a human's approval, which this route cannot ask for; it was not made. Call it over MCP.`);
    return askHuman(step, ctx as GuardContext & Required<Pick<GuardContext, 'askHuman'>>, d.rule.approval !== 'console');
  };
}
