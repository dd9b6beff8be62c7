/** The config room's public surface: loaders, watcher and validation for gateway.yaml, servers.d and agents.d. */
export type * from './types.js';
export { loadServersDir, loadServerFile, readServerSource, mergeServers, DEFAULT_TIMEOUT_MS } from './servers.js';
export type { ServerLoadOptions, ServerFileResult, ServersLoadResult } from './servers.js';
export { loadAgentsDir, loadAgentFile, readAgentSource, mergeAgents } from './agents.js';
export type { AgentFileResult, AgentsLoadResult } from './agents.js';
export { defaultDataDir, loadGatewayConfig, PACKAGE_GATEWAY_FILE } from './gateway.js';
export type { GatewayOverrides, GatewayLoadOptions, GatewayLoadResult } from './gateway.js';
export { ConfigWatcher, stableJson, manifestFingerprint } from './watch.js';
export type { ConfigWatcherOptions, ConfigWatcherEvents, ServersChange, AgentsChange } from './watch.js';
export { validatePaths, classifyConfigFile } from './validate.js';
export type { ValidateOptions, ValidationResult, ConfigFileKind } from './validate.js';
export { interpolateString, type Env } from './interpolate.js';
export { formatProblem, NAME_PATTERN } from './problems.js';
