/**
 * Agent cards the gateway publishes: its own (one skill per federated A2A agent) and each agent's card rewritten
 * so its interfaces point at the gateway and its security schemes are the gateway's.
 */
import type { AgentCard, AgentInterface, AgentSkill, SecurityRequirement, SecurityScheme } from '@a2a-js/sdk';
import { GATEWAY_VERSION } from '../gateway/gateway.js';

export type GatewaySecurity = 'none' | 'bearer';

function interfaces(url: string): AgentInterface[] {
  // 1.0 first (SDK clients prefer it); the 0.3 entry lets 0.3 callers find the same endpoint.
  return [
    { url, protocolBinding: 'JSONRPC', protocolVersion: '1.0', tenant: '' },
    { url, protocolBinding: 'JSONRPC', protocolVersion: '0.3', tenant: '' },
  ];
}

function security(kind: GatewaySecurity): { securitySchemes: Record<string, SecurityScheme>; securityRequirements: SecurityRequirement[] } {
  if (kind === 'none') return { securitySchemes: {}, securityRequirements: [] };
  const bearer: SecurityScheme = {
    scheme: {
      $case: 'httpAuthSecurityScheme',
      value: { scheme: 'Bearer', bearerFormat: 'JWT', description: 'A token from an issuer in gateway.yaml auth.issuers, a delegated token from /oauth/token, or an API key from agents.d.' },
    },
  };
  return { securitySchemes: { bearer }, securityRequirements: [{ schemes: { bearer: { list: [] } } }] };
}

/** A federated agent on the public card: its card when it could be read (why not is for the log, not the card). */
export interface FederatedAgent {
  name: string;
  card?: AgentCard;
}

function skillFor(agent: FederatedAgent, base: string): AgentSkill {
  const card = agent.card;
  const address = `${base}/a2a/${agent.name}`;
  const description = card
    ? `${card.description || card.name}${card.skills.length > 0 ? ` Skills: ${card.skills.map((s) => s.name || s.id).join(', ')}.` : ''} Reach it at ${address}.`
    : `Currently unavailable. Reach it at ${address}.`;
  return {
    id: agent.name,
    name: card?.name || agent.name,
    description,
    tags: ['a2a', agent.name, ...new Set(card?.skills.flatMap((s) => s.tags) ?? [])],
    examples: card?.skills.flatMap((s) => s.examples).slice(0, 5) ?? [],
    inputModes: card?.defaultInputModes ?? [],
    outputModes: card?.defaultOutputModes ?? [],
    securityRequirements: [],
  };
}

/** The gateway as an A2A agent: messages to `${base}/a2a` reach the agent a skill names (message.metadata.agent). */
export function gatewayCard(base: string, agents: readonly FederatedAgent[], kind: GatewaySecurity): AgentCard {
  return {
    name: 'Switchyard',
    description:
      'Agent gateway: every A2A agent it federates, behind one identity, policy, limits and audit trail. Address an agent directly at /a2a/{name} ' +
      '(its card at /a2a/{name}/.well-known/agent-card.json), or here with message.metadata.agent set to its name.',
    supportedInterfaces: interfaces(`${base}/a2a`),
    provider: { organization: 'Switchyard', url: base },
    version: GATEWAY_VERSION,
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    ...security(kind),
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills: agents.map((a) => skillFor(a, base)),
    signatures: [],
  };
}

/** An agent's own card, pointing at the gateway. Signatures are dropped: the rewrite would break them. */
export function rewrittenCard(card: AgentCard, name: string, base: string, kind: GatewaySecurity): AgentCard {
  return {
    ...card,
    supportedInterfaces: interfaces(`${base}/a2a/${name}`),
    capabilities: { streaming: card.capabilities?.streaming ?? false, pushNotifications: false, extensions: card.capabilities?.extensions ?? [], extendedAgentCard: false },
    ...security(kind),
    skills: card.skills.map((s) => ({ ...s, securityRequirements: [] })),
    signatures: [],
  };
}
