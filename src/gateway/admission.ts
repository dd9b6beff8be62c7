/** Who may open one more downstream session: caps per agent (agents.d limits.sessions) and in total (gateway.yaml). */
import type { Access } from './access.js';
import { reaches } from './access.js';
import type { View } from './client-session.js';
import type { Caller, Refusal } from './types.js';

export const DEFAULT_SESSIONS_PER_AGENT = 32;
export const DEFAULT_SESSIONS_MAX = 1000;

/** initialize refused before any session exists (a cap, or a single server the caller may not see). */
export class SessionRefusedError extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
    this.name = 'SessionRefusedError';
  }
}

export class SessionAdmission {
  /** Open sessions per agent. */
  private readonly perAgent = new Map<string, number>();
  private total = 0;

  constructor(private readonly max: number) {}

  /**
   * Throws SessionRefusedError when the caller may not open one more session; else counts it as open. At a cap,
   * `reclaim` may first end one abandoned session (of this agent, or of anyone for the total cap).
   */
  admit(caller: Caller, view: View, access: Access, reclaim: (agentId?: string) => boolean = () => false): void {
    // Local mode is one person on loopback (whose tools, like the conformance CLI or an inspector, rarely end
    // sessions): without a local.yaml limit, only the gateway's total cap applies to it.
    const perAgent = caller.agent?.limits.sessions ?? (caller.via === 'local' ? this.max : DEFAULT_SESSIONS_PER_AGENT);
    if ((this.perAgent.get(caller.agentId) ?? 0) >= perAgent) reclaim(caller.agentId);
    if (this.total >= this.max) reclaim();
    const open = this.perAgent.get(caller.agentId) ?? 0;
    if (open >= perAgent) {
      throw new SessionRefusedError({
        reason: 'rate_limited',
        message: `Agent ${caller.agentId} already has ${open} open sessions, its limit (limits.sessions, default ${DEFAULT_SESSIONS_PER_AGENT}); end unused sessions with DELETE or wait for them to expire.`,
        data: { limit: 'sessions', max: perAgent, used: open },
      });
    }
    if (this.total >= this.max) {
      throw new SessionRefusedError({
        reason: 'rate_limited',
        message: `The gateway already holds ${this.total} sessions, its limit (sessions.max in gateway.yaml); retry later.`,
        data: { limit: 'gateway sessions', max: this.max, used: this.total },
      });
    }
    if (view.single && !reaches(access, view.single)) {
      throw new SessionRefusedError({
        reason: 'policy_denied',
        message: `Agent ${caller.agentId} may use nothing of server '${view.single}'; connect to /mcp, or grant it in agents.d.`,
        data: { server: view.single },
      });
    }
    this.perAgent.set(caller.agentId, open + 1);
    this.total++;
  }

  /** A session admitted for this agent ended. */
  release(agentId: string): void {
    const left = (this.perAgent.get(agentId) ?? 1) - 1;
    if (left > 0) this.perAgent.set(agentId, left);
    else this.perAgent.delete(agentId);
    this.total = Math.max(0, this.total - 1);
  }
}
