/** Shapes of the three configuration sources: servers.d, agents.d and gateway.yaml. */

export type TransportKind = 'stdio' | 'http' | 'sse' | 'a2a';

/** One upstream as declared in servers.d, after interpolation and defaults. */
export interface ServerManifest {
  name: string;
  transport: TransportKind;
  command?: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  url?: string;
  headers: Record<string, string>;
  tools: { include: string[]; exclude: string[] };
  timeoutMs: number;
  /** Start and handshake (initialize) of an upstream session, separate from calls. */
  connectTimeoutMs: number;
  /** A per-client upstream session unused this long is closed. */
  idleSeconds: number;
  breaker: { failures: number; cooldownSeconds: number };
  session: 'per-client' | 'shared';
  required: boolean;
  /** 'jwt': the gateway mints a short-lived token for this upstream stating who acts. */
  identity?: 'jwt';
  /** The MCP revision spoken to this upstream (http only); absent: auto for http (probe server/discover, else initialize), 2025-11-25 for stdio and sse. */
  protocol?: 'auto' | '2025-11-25' | '2026-07-28';
  /**
   * a2a: origins besides url's own that the agent's card may send the gateway to: they may be link-local or
   * metadata addresses and they receive `headers`. The gateway's own listener is never allowed.
   */
  allowOrigins?: string[];
  /** Absolute path of the file it came from, and the 1-based line where it starts. */
  source: { file: string; line: number };
}

/** A problem found in a configuration file, reported as `file:line: message`. */
export interface ConfigProblem {
  file: string;
  line: number;
  message: string;
}

export interface ToolRule {
  tool: string;
  args?: Record<string, string>;
  /** `human`: the calling client may answer through elicitation, else the approval queue; `console`: the queue only. */
  approval?: 'human' | 'console';
}

export interface RateWindow {
  toolCalls?: number;
  calls?: number;
  tokens?: number;
  /** US dollars spent on model calls (prices from gateway.yaml `models`). */
  costUsd?: number;
}

export interface AgentManifest {
  id: string;
  owner?: string;
  team?: string;
  credentials: {
    jwt?: { sub?: string; client_id?: string; azp?: string; iss?: string };
    apiKeys: string[];
  };
  tools: { allow: string[]; deny: string[]; rules: ToolRule[] };
  prompts?: { allow: string[]; deny: string[] };
  resources?: { allow: string[]; deny: string[] };
  a2a: { allow: string[] };
  models: { allow: string[]; deny: string[] };
  delegation: { agents: string[]; maxDepth: number; maxChildren: number };
  limits: {
    workflow?: { steps?: number; toolCalls?: number; tokens?: number; costUsd?: number; seconds?: number };
    perMinute?: RateWindow;
    perHour?: RateWindow;
    perDay?: RateWindow;
    /** A rolling 30 days. */
    perMonth?: RateWindow;
    loop?: { sameCall?: number; windowSeconds?: number; cycle?: number };
    /** Open downstream sessions at once (default 32). */
    sessions?: number;
  };
  /** May set X-Workflow-Id / traceparent to join an existing workflow. */
  canSetWorkflow?: boolean;
  source: { file: string; line: number };
}

export interface IssuerConfig {
  issuer: string;
  audience: string | string[];
  jwksUri?: string;
  jwksFile?: string;
  algorithms?: string[];
}

export type ModelProvider = 'openai' | 'anthropic';

/** One entry of gateway.yaml `models` (SPEC §9). */
export interface ModelConfig {
  /** What agents put in `model`. */
  name: string;
  provider: ModelProvider;
  /** What the provider's own SDK takes as base URL (OpenAI: …/v1; Anthropic: the host root). */
  baseUrl: string;
  /** Injected upstream (Bearer, or x-api-key for anthropic); never shown to agents, logs or errors. */
  apiKey?: string;
  /** Upstream model id; default: name. */
  model?: string;
  /** Extra headers sent upstream (e.g. Azure's api-key); never shown to agents. */
  headers: Record<string, string>;
  /** USD per 1M tokens. */
  price?: { input: number; output: number; cachedInput?: number };
  /** Other models' names, tried in order on 429, 5xx, connect error or timeout before the first byte. */
  fallbacks: string[];
  timeoutMs: number;
  breaker: { failures: number; cooldownSeconds: number };
}

export interface ModelRouteConfig {
  /** Most output tokens reserved at admission for one call. */
  reservationCapTokens: number;
  /** Most bytes of a provider stream read after the client left. */
  maxDrainBytes: number;
}

export interface GatewayConfig {
  host: string;
  port: number;
  dataDir: string;
  serversDir: string;
  agentsDir: string;
  /** Public base URL used in metadata documents; derived from host/port when absent. */
  publicUrl?: string;
  maxBodyBytes: number;
  allowedHosts: string[];
  allowedOrigins: string[];
  auth: { issuers: IssuerConfig[] };
  admin: { tokens: string[] };
  teams: Record<string, { perMinute?: RateWindow; perHour?: RateWindow; perDay?: RateWindow; perMonth?: RateWindow }>;
  audit: {
    enabled: boolean;
    durability: 'batched' | 'strict';
    flushMs: number;
    retentionDays?: number;
    redact: string[];
    /** File holding the audit HMAC key; default `<dataDir>/keys/audit-hmac.key`, created on first start. */
    hmacKeyFile?: string;
    /** Model prompts and completions in the trail: none (default), a SHA-256 digest, or the full (redacted) bodies. */
    modelBodies: 'none' | 'hash' | 'full';
  };
  delegation: { maxTokenSeconds: number };
  models: ModelConfig[];
  modelRoute: ModelRouteConfig;
  /** Per-upstream timeout for list fan-out, so one slow upstream never stalls the rest. */
  listTimeoutMs: number;
  /** Downstream sessions: closed after idleSeconds without a message; at most `max` open at once. */
  sessions: { idleSeconds: number; max: number };
  /** Human approval (SPEC §10): how long a held call waits, and where pending calls are announced. */
  approval: { timeoutSeconds: number; webhook?: string };
  /** Shared fast state for replicas (SPEC §12): counters, budgets, loop history, workflow states, revocations, sessions, approvals. */
  state: { redis?: string; failMode: 'closed' | 'open'; advertiseUrl?: string };
  /** Shared durable store for replicas: audit, workflows, delegation, signing keys; default SQLite in dataDir. */
  store: { postgres?: string };
}
