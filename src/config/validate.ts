/** `switchyard validate [paths…]`: check manifests and gateway.yaml, reporting each problem as `file:line: message`. */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { AgentManifest, ConfigProblem, GatewayConfig, ServerManifest } from './types.js';
import type { Env } from './interpolate.js';
import { parseSourceFile } from './source.js';
import { mergeServers, readServerSource } from './servers.js';
import { mergeAgents, readAgentSource } from './agents.js';
import { loadGatewayConfig } from './gateway.js';
import { isPlainObject, listConfigFiles } from './problems.js';

export type ConfigFileKind = 'server' | 'agent' | 'gateway';

export interface ValidateOptions {
  env?: Env;
  /** Directory that relative paths and report lines are relative to; default process.cwd(). */
  cwd?: string;
}

export interface ValidationResult {
  problems: ConfigProblem[];
  /** Said without failing validation (a default name that was renamed). */
  warnings: ConfigProblem[];
  /** One `file:line: warning: message` line per warning. */
  warningReport: string[];
  /** One `file:line: message` line per problem, paths relative to cwd where they are inside it. */
  report: string[];
  /** Valid servers, for the CLI to show (e.g. with their exposed tool names). */
  servers: ServerManifest[];
  agents: AgentManifest[];
  gateway?: GatewayConfig;
  /** Every file checked, with the kind it was read as. */
  files: { file: string; kind: ConfigFileKind }[];
}

const GATEWAY_NAMES = new Set(['gateway.yaml', 'gateway.yml', 'gateway.json']);

/** gateway.yaml by name; agents.d / servers.d by directory; otherwise an agent when it has `id` or `credentials` at the top. */
export function classifyConfigFile(file: string, data: unknown): ConfigFileKind {
  if (GATEWAY_NAMES.has(basename(file).toLowerCase())) return 'gateway';
  const parent = basename(dirname(file));
  if (parent === 'agents.d') return 'agent';
  if (parent === 'servers.d') return 'server';
  if (isPlainObject(data) && ('credentials' in data || 'id' in data)) return 'agent';
  return 'server';
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
}

/** Check files and directories; with no paths, ./gateway.yaml and the servers and agents directories it names. */
export function validatePaths(paths: readonly string[], options: ValidateOptions = {}): ValidationResult {
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const files: ValidationResult['files'] = [];
  const seen = new Set<string>();
  const serverFiles: [string, ServerManifest[]][] = [];
  const agentFiles: [string, AgentManifest[]][] = [];
  let gateway: GatewayConfig | undefined;
  let dataDir: string | undefined;

  const checkFile = (file: string, forced?: ConfigFileKind): void => {
    if (seen.has(file)) return;
    seen.add(file);
    if (forced === 'gateway' || (!forced && GATEWAY_NAMES.has(basename(file).toLowerCase()))) {
      files.push({ file, kind: 'gateway' });
      const r = loadGatewayConfig(file, {}, { env, cwd });
      problems.push(...r.problems);
      if (r.problems.length === 0) gateway = r.config;
      return;
    }
    const src = parseSourceFile(file);
    const kind = forced ?? classifyConfigFile(file, src.data);
    files.push({ file, kind });
    if (kind === 'agent') {
      const r = readAgentSource(src);
      problems.push(...r.problems);
      warnings.push(...(r.warnings ?? []));
      agentFiles.push([file, r.agents]);
    } else {
      const r = readServerSource(src, { env, workspaceDir: cwd, dataDir });
      problems.push(...r.problems);
      warnings.push(...r.warnings);
      serverFiles.push([file, r.servers]);
    }
  };

  const checkDir = (dir: string, forced?: ConfigFileKind): void => {
    const name = basename(dir);
    const kind = forced ?? (name === 'agents.d' ? 'agent' : name === 'servers.d' ? 'server' : undefined);
    const gatewayFile = [...GATEWAY_NAMES].map((n) => join(dir, n)).find((f) => existsSync(f));
    if (!kind && gatewayFile) {
      checkProject(gatewayFile);
      return;
    }
    for (const file of listConfigFiles(dir)) checkFile(file, kind);
  };

  // A gateway.yaml brings the directories it names along.
  const checkProject = (gatewayFile: string | undefined): void => {
    const r = loadGatewayConfig(gatewayFile, {}, { env, cwd });
    if (r.file) checkFile(r.file, 'gateway');
    dataDir = r.config.dataDir;
    checkDir(r.config.serversDir, 'server');
    checkDir(r.config.agentsDir, 'agent');
  };

  if (paths.length === 0) {
    checkProject(undefined);
  } else {
    for (const p of paths) {
      const full = resolve(cwd, p);
      let isDir: boolean;
      try {
        isDir = statSync(full).isDirectory();
      } catch {
        problems.push({ file: full, line: 1, message: 'no such file or directory; check the path' });
        continue;
      }
      if (isDir) checkDir(full);
      else if (GATEWAY_NAMES.has(basename(full).toLowerCase())) checkProject(full);
      else checkFile(full);
    }
  }

  const servers = mergeServers(serverFiles);
  const agents = mergeAgents(agentFiles);
  const all = sortProblems([...problems, ...servers.problems, ...agents.problems]);
  const show = (file: string): string => {
    const rel = relative(cwd, file);
    return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
  };
  const sortedWarnings = sortProblems(warnings);
  return {
    problems: all,
    report: all.map((p) => `${show(p.file)}:${p.line}: ${p.message}`),
    warnings: sortedWarnings,
    warningReport: sortedWarnings.map((w) => `${show(w.file)}:${w.line}: warning: ${w.message}`),
    servers: [...servers.servers.values()],
    agents: [...agents.agents.values()],
    gateway,
    files,
  };
}
