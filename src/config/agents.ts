/** agents.d: one agent identity and its policy per file (SPEC §4). */
import { resolve } from 'node:path';
import type { AgentManifest, ConfigProblem } from './types.js';
import { parseSourceFile, type ParsedSource } from './source.js';
import { agentManifestSchema } from './agent-schema.js';
import { NAME_PATTERN, NAME_RULE, deriveName, fileStem, isPlainObject, listConfigFiles, renameWarning, zodProblems } from './problems.js';

export interface AgentFileResult {
  agents: AgentManifest[];
  problems: ConfigProblem[];
  /** Said about a valid agent without stopping it (an id derived from a renamed file stem). */
  warnings?: ConfigProblem[];
}

export interface AgentsLoadResult {
  agents: Map<string, AgentManifest>;
  problems: ConfigProblem[];
  byFile: Map<string, AgentFileResult>;
}

export const DEFAULT_MAX_CHILDREN = 8;

/** Validate an already parsed agents.d file. */
export function readAgentSource(src: ParsedSource): AgentFileResult {
  if (src.problems.length > 0) return { agents: [], problems: src.problems };
  if (src.data === undefined || src.data === null) return { agents: [], problems: [] };
  if (!isPlainObject(src.data)) {
    return { agents: [], problems: [{ file: src.file, line: src.lineAt([]), message: 'expected a mapping of agent fields (id, credentials, tools, …)' }] };
  }
  const parsed = agentManifestSchema.safeParse(src.data);
  if (!parsed.success) return { agents: [], problems: zodProblems(parsed.error, src) };

  const raw = parsed.data;
  const id = raw.id ?? deriveName(fileStem(src.file));
  if (!NAME_PATTERN.test(id)) {
    return {
      agents: [],
      problems: [{ file: src.file, line: src.lineAt([]), message: `agent id '${id}' (from the file name) must use ${NAME_RULE}; add a valid 'id:' field` }],
    };
  }
  const agent: AgentManifest = {
    id,
    credentials: { apiKeys: raw.credentials.apiKeys },
    tools: raw.tools,
    a2a: raw.a2a,
    models: raw.models,
    delegation: {
      agents: raw.delegation.agents,
      // One hop by default when delegation targets are named; none otherwise.
      maxDepth: raw.delegation.maxDepth ?? (raw.delegation.agents.length > 0 ? 1 : 0),
      maxChildren: raw.delegation.maxChildren,
    },
    limits: raw.limits,
    canSetWorkflow: raw.canSetWorkflow,
    source: { file: src.file, line: src.lineAt([]) },
  };
  if (raw.owner !== undefined) agent.owner = raw.owner;
  if (raw.team !== undefined) agent.team = raw.team;
  if (raw.credentials.jwt) agent.credentials.jwt = raw.credentials.jwt;
  if (raw.prompts) agent.prompts = raw.prompts;
  if (raw.resources) agent.resources = raw.resources;
  const renamed = raw.id === undefined ? renameWarning(fileStem(src.file), id, 'file name', 'id') : undefined;
  return { agents: [agent], problems: [], ...(renamed ? { warnings: [{ file: src.file, line: src.lineAt([]), message: renamed }] } : {}) };
}

export function loadAgentFile(file: string): AgentFileResult {
  return readAgentSource(parseSourceFile(resolve(file)));
}

function jwtKey(agent: AgentManifest): string | undefined {
  const jwt = agent.credentials.jwt;
  return jwt ? JSON.stringify([jwt.iss ?? '', jwt.sub ?? '', jwt.client_id ?? '', jwt.azp ?? '']) : undefined;
}

/**
 * Combine agents of several files. A repeated id, API key hash or JWT match is a problem on the later agent,
 * which is left out so one credential never names two agents. `owners` (id → file) keeps ids with their current file.
 */
export function mergeAgents(
  files: Iterable<readonly [string, readonly AgentManifest[]]>,
  owners?: ReadonlyMap<string, string>,
): { agents: Map<string, AgentManifest>; problems: ConfigProblem[] } {
  const all = [...files].flatMap(([, list]) => list);
  const ordered = owners ? [...all].sort((a, b) => Number(owners.get(b.id) === b.source.file) - Number(owners.get(a.id) === a.source.file)) : all;
  const agents = new Map<string, AgentManifest>();
  const keyOwner = new Map<string, AgentManifest>();
  const jwtOwner = new Map<string, AgentManifest>();
  const problems: ConfigProblem[] = [];
  const clash = (agent: AgentManifest, message: string): void => {
    problems.push({ file: agent.source.file, line: agent.source.line, message });
  };
  for (const agent of ordered) {
    const first = agents.get(agent.id);
    if (first) {
      clash(agent, `agent id '${agent.id}' is already used by ${first.source.file}:${first.source.line}; give one of them another id`);
      continue;
    }
    const sharedKey = agent.credentials.apiKeys.find((k) => keyOwner.has(k));
    if (sharedKey) {
      clash(agent, `API key ${sharedKey.slice(0, 15)}… is already given to agent '${keyOwner.get(sharedKey)?.id}'; each key must belong to one agent`);
      continue;
    }
    const jwt = jwtKey(agent);
    const jwtFirst = jwt ? jwtOwner.get(jwt) : undefined;
    if (jwt && jwtFirst) {
      clash(agent, `credentials.jwt matches the same tokens as agent '${jwtFirst.id}'; make the claims differ so a token names one agent`);
      continue;
    }
    agents.set(agent.id, agent);
    for (const k of agent.credentials.apiKeys) keyOwner.set(k, agent);
    if (jwt) jwtOwner.set(jwt, agent);
  }
  return { agents, problems };
}

/** Load every agent in an agents.d directory. A missing directory holds no agents. */
export function loadAgentsDir(dir: string): AgentsLoadResult {
  const byFile = new Map<string, AgentFileResult>();
  for (const file of listConfigFiles(resolve(dir))) byFile.set(file, loadAgentFile(file));
  const merged = mergeAgents([...byFile].map(([file, r]) => [file, r.agents] as const));
  const problems = [...[...byFile.values()].flatMap((r) => r.problems), ...merged.problems];
  return { agents: merged.agents, problems, byFile };
}
