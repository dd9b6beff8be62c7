/** The agents of agents.d, indexed by the credentials they declare; replaced as a whole on reload. */
import type { AgentManifest } from '../config/types.js';
import { ApiKeyIndex, type ApiKeyEntry } from './apikeys.js';

/** The agent id that loopback callers get in local mode (no issuers, no API keys). */
export const LOCAL_AGENT_ID = 'local';

export type ClaimField = 'sub' | 'client_id' | 'azp';
const CLAIM_FIELDS: readonly ClaimField[] = ['sub', 'client_id', 'azp'];

export interface ClaimMatch {
  agent: AgentManifest;
  /** The claim the agent was indexed by: `sub` means the token is the agent's own; client_id/azp mean a client acting for its subject. */
  matchedBy: ClaimField;
}

export interface RegistryProblem {
  agentId: string;
  message: string;
}

interface ClaimMatcher {
  agent: AgentManifest;
  required: Array<[string, string]>;
  matchedBy: ClaimField;
}

export class AgentRegistry {
  #agents: ReadonlyMap<string, AgentManifest> = new Map();
  #byClaim = new Map<ClaimField, Map<string, ClaimMatcher[]>>();
  #apiKeys = new ApiKeyIndex<AgentManifest>();
  #generation = 0;

  constructor(agents: ReadonlyMap<string, AgentManifest> = new Map()) {
    this.update(agents);
  }

  /** Replace every agent at once (reload). Returns credential conflicts; the first agent by id keeps a contested credential. */
  update(agents: ReadonlyMap<string, AgentManifest>): RegistryProblem[] {
    this.#generation++;
    const problems: RegistryProblem[] = [];
    const byClaim = new Map<ClaimField, Map<string, ClaimMatcher[]>>(CLAIM_FIELDS.map((f) => [f, new Map()]));
    const apiKeys = new ApiKeyIndex<AgentManifest>();
    const seenClaims = new Map<string, string>();
    const ordered = [...agents.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

    for (const agent of ordered) {
      const jwt = agent.credentials.jwt;
      if (jwt) {
        const matchedBy = CLAIM_FIELDS.find((f) => jwt[f] !== undefined);
        const required = (['sub', 'client_id', 'azp', 'iss'] as const)
          .filter((f) => jwt[f] !== undefined)
          .map((f): [string, string] => [f, jwt[f]!]);
        const signature = JSON.stringify(required);
        const holder = seenClaims.get(signature);
        if (!matchedBy) {
          problems.push({ agentId: agent.id, message: 'credentials.jwt names none of sub, client_id or azp, so no token can match it' });
        } else if (holder) {
          problems.push({ agentId: agent.id, message: `credentials.jwt is the same as agent ${holder}'s; give each agent distinct claims` });
        } else {
          seenClaims.set(signature, agent.id);
          const index = byClaim.get(matchedBy)!;
          const list = index.get(jwt[matchedBy]!) ?? [];
          list.push({ agent, required, matchedBy });
          // Most specific first: an agent that also pins `iss` wins over one that does not.
          list.sort((a, b) => b.required.length - a.required.length);
          index.set(jwt[matchedBy]!, list);
        }
      }
      for (const ref of agent.credentials.apiKeys) {
        const holder = apiKeys.ownerOfRef(ref);
        if (holder) problems.push({ agentId: agent.id, message: `an API key hash is also listed by agent ${holder.id}; each key must belong to one agent` });
        else if (!apiKeys.add(ref, agent)) problems.push({ agentId: agent.id, message: "an API key is not 'sha256:<64 hex digits>'; it is ignored" });
      }
    }
    this.#agents = agents;
    this.#byClaim = byClaim;
    this.#apiKeys = apiKeys;
    return problems;
  }

  get(id: string): AgentManifest | undefined {
    return this.#agents.get(id);
  }

  get size(): number {
    return this.#agents.size;
  }

  /** Every agent, by id. */
  list(): AgentManifest[] {
    return [...this.#agents.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** True when some agent has an API key: local mode then ends, as remote callers can authenticate. */
  get hasApiKeys(): boolean {
    return this.#apiKeys.size > 0;
  }

  /** Changes on every update: what was derived from the agents before (a caller per verified token) is stale. */
  get generation(): number {
    return this.#generation;
  }

  /** The agent whose declared claims (sub, client_id or azp, and iss if pinned) all equal the verified token's. */
  findByClaims(claims: Readonly<Record<string, unknown>>): ClaimMatch | undefined {
    for (const field of CLAIM_FIELDS) {
      const value = claims[field];
      if (typeof value !== 'string') continue;
      const candidates = this.#byClaim.get(field)!.get(value);
      if (!candidates) continue;
      for (const c of candidates) {
        if (c.required.every(([k, v]) => claims[k] === v)) return { agent: c.agent, matchedBy: c.matchedBy };
      }
    }
    return undefined;
  }

  findByApiKey(presentedKey: string): AgentManifest | undefined {
    return this.#apiKeys.lookup(presentedKey);
  }

  /** The agent of a presented key and the key's `sha256:` reference. */
  matchApiKey(presentedKey: string): ApiKeyEntry<AgentManifest> | undefined {
    return this.#apiKeys.match(presentedKey);
  }
}
