/** gateway.yaml: listen address, directories, auth issuers, admin tokens, team limits, audit and model routes. */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigProblem, GatewayConfig } from './types.js';
import { parseSourceFile } from './source.js';
import { interpolateTree, type Env } from './interpolate.js';
import { gatewaySchema } from './gateway-schema.js';
import { modelProblems } from './models.js';
import { isPlainObject, pathProblems, withoutRepeats, zodProblems } from './problems.js';

/** Command-line values; they win over gateway.yaml, and relative paths in them resolve from the working directory. */
export interface GatewayOverrides {
  host?: string;
  port?: number;
  dataDir?: string;
  serversDir?: string;
  agentsDir?: string;
  publicUrl?: string;
}

export interface GatewayLoadOptions {
  /** Source of `${VAR}`; default process.env. */
  env?: Env;
  /** Working directory for the default gateway.yaml and for overrides; default process.cwd(). */
  cwd?: string;
  /** Read this file when no path is given and the working directory has no gateway.yaml (serve and stdio pass PACKAGE_GATEWAY_FILE). */
  fallbackFile?: string;
}

/** The gateway.yaml shipped with the package: its servers.d and agents.d sit next to it. */
export const PACKAGE_GATEWAY_FILE = fileURLToPath(new URL('../../gateway.yaml', import.meta.url));

export interface GatewayLoadResult {
  config: GatewayConfig;
  problems: ConfigProblem[];
  /** Absolute path of the gateway.yaml that was read; undefined when none exists and defaults apply. */
  file?: string;
}

function applyOverrides(config: GatewayConfig, overrides: GatewayOverrides, cwd: string): GatewayConfig {
  const out = { ...config };
  if (overrides.host !== undefined) out.host = overrides.host;
  if (overrides.port !== undefined) out.port = overrides.port;
  if (overrides.publicUrl !== undefined) out.publicUrl = overrides.publicUrl;
  if (overrides.dataDir !== undefined) out.dataDir = resolve(cwd, overrides.dataDir);
  if (overrides.serversDir !== undefined) out.serversDir = resolve(cwd, overrides.serversDir);
  if (overrides.agentsDir !== undefined) out.agentsDir = resolve(cwd, overrides.agentsDir);
  return out;
}

/** Defaults with directories resolved against `baseDir`. */
function toConfig(data: unknown, baseDir: string): GatewayConfig {
  const raw = gatewaySchema.parse(data ?? {});
  const config: GatewayConfig = {
    host: raw.host,
    port: raw.port,
    dataDir: resolve(baseDir, raw.dataDir),
    serversDir: resolve(baseDir, raw.serversDir),
    agentsDir: resolve(baseDir, raw.agentsDir),
    maxBodyBytes: raw.maxBodyBytes,
    allowedHosts: raw.allowedHosts,
    allowedOrigins: raw.allowedOrigins,
    auth: {
      issuers: raw.auth.issuers.map((i) => (i.jwksFile !== undefined ? { ...i, jwksFile: resolve(baseDir, i.jwksFile) } : { ...i })),
    },
    admin: raw.admin,
    teams: raw.teams,
    audit: raw.audit.hmacKeyFile !== undefined ? { ...raw.audit, hmacKeyFile: resolve(baseDir, raw.audit.hmacKeyFile) } : raw.audit,
    delegation: raw.delegation,
    models: raw.models,
    modelRoute: raw.modelRoute,
    listTimeoutMs: raw.listTimeoutMs,
    sessions: raw.sessions,
    approval: raw.approval,
    state: raw.state.advertiseUrl !== undefined ? { ...raw.state, advertiseUrl: raw.state.advertiseUrl.replace(/\/+$/, '') } : raw.state,
    store: raw.store,
  };
  if (raw.publicUrl !== undefined) config.publicUrl = raw.publicUrl.replace(/\/+$/, '');
  return config;
}

/** The directories a broken gateway.yaml still names well, so `validate` checks the manifests it points at in the same run. */
function withValidDirs(config: GatewayConfig, data: unknown, baseDir: string): GatewayConfig {
  if (!isPlainObject(data)) return config;
  const out = { ...config };
  for (const key of ['dataDir', 'serversDir', 'agentsDir'] as const) {
    const value = data[key];
    if (typeof value === 'string' && value !== '') out[key] = resolve(baseDir, value);
  }
  return out;
}

/**
 * Load gateway.yaml (default: ./gateway.yaml, else `fallbackFile`). A missing file means all defaults.
 * With problems, `config` holds the defaults (and the directories that are well given) and the caller should refuse to start.
 */
export function loadGatewayConfig(path: string | undefined, overrides: GatewayOverrides = {}, options: GatewayLoadOptions = {}): GatewayLoadResult {
  const cwd = resolve(options.cwd ?? process.cwd());
  const local = resolve(cwd, path ?? 'gateway.yaml');
  const file = path === undefined && !existsSync(local) && options.fallbackFile !== undefined ? resolve(options.fallbackFile) : local;
  const defaults = (): GatewayConfig => applyOverrides(toConfig({}, cwd), overrides, cwd);
  if (!existsSync(file)) return { config: defaults(), problems: [] };

  const src = parseSourceFile(file);
  if (src.problems.length > 0) return { config: defaults(), problems: src.problems, file };
  if (src.data !== undefined && src.data !== null && !isPlainObject(src.data)) {
    return { config: defaults(), problems: [{ file, line: src.lineAt([]), message: 'expected a mapping of gateway settings (host, port, auth, …)' }], file };
  }
  const baseDir = dirname(file);
  const interpolated = interpolateTree(src.data ?? {}, { env: options.env ?? process.env, baseDir, workspaceDir: cwd });
  let problems = pathProblems(interpolated.problems, src);
  const parsed = gatewaySchema.safeParse(interpolated.value);
  if (!parsed.success) problems = withoutRepeats(problems, zodProblems(parsed.error, src));
  else {
    for (const p of modelProblems(parsed.data.models)) problems.push({ file, line: src.lineAt(p.path), message: p.message });
  }
  if (problems.length > 0) return { config: applyOverrides(withValidDirs(toConfig({}, cwd), interpolated.value, baseDir), overrides, cwd), problems, file };
  return { config: applyOverrides(toConfig(interpolated.value, baseDir), overrides, cwd), problems: [], file };
}

/** The data directory `serve` and `stdio` would use with no flags: from ./gateway.yaml, else the package's. */
export function defaultDataDir(cwd: string = process.cwd()): string {
  return loadGatewayConfig(undefined, {}, { cwd, fallbackFile: PACKAGE_GATEWAY_FILE }).config.dataDir;
}
