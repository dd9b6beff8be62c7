/** servers.d: one manifest per file, or a client config holding an `mcpServers` / `servers` map. */
import { dirname, resolve } from 'node:path';
import type { ZodError, ZodTypeAny } from 'zod';
import type { ConfigProblem, ServerManifest, TransportKind } from './types.js';
import { parseSourceFile, type ParsedSource, type ValuePath } from './source.js';
import { interpolateTree, type Env, type PathProblem } from './interpolate.js';
import { readEnvFile } from './env-file.js';
import { clientServerEntrySchema, serverManifestSchema, type RawServerEntry } from './server-schema.js';
import {
  NAME_PATTERN,
  NAME_RULE,
  deriveName,
  fileStem,
  isPlainObject,
  listConfigFiles,
  pathProblems,
  renameWarning,
  withoutRepeats,
  zodProblems,
} from './problems.js';

export interface ServerLoadOptions {
  /** Source of `${VAR}`; default process.env. */
  env?: Env;
  /** The gateway's working directory: default `cwd` of stdio servers and `${workspaceFolder}`; default process.cwd(). */
  workspaceDir?: string;
  /** The gateway's data directory, for `${dataDir}`; default `data` under workspaceDir. */
  dataDir?: string;
}

export interface ServerFileResult {
  servers: ServerManifest[];
  problems: ConfigProblem[];
  /** Things said about valid entries that do not stop them (a default name that was renamed). */
  warnings: ConfigProblem[];
}

export interface ServersLoadResult {
  servers: Map<string, ServerManifest>;
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
  byFile: Map<string, ServerFileResult>;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_SECONDS = 600;

function isSseUrl(url: string): boolean {
  try {
    return new URL(url).pathname.replace(/\/+$/, '').endsWith('/sse');
  } catch {
    return false;
  }
}

function transportFromType(type: RawServerEntry['type']): TransportKind | undefined {
  if (type === 'streamable-http' || type === 'streamableHttp') return 'http';
  return type;
}

type ServerFields = Omit<ServerManifest, 'source'>;

/** Defaults, transport inference and the checks that span several fields. */
function finishEntry(raw: RawServerEntry, defaultName: string, nameOrigin: string, dirs: { workspaceDir: string; baseDir: string }): { fields?: ServerFields; problems: PathProblem[] } {
  const problems: PathProblem[] = [];
  const name = raw.name ?? deriveName(defaultName);
  if (!NAME_PATTERN.test(name)) {
    problems.push({ path: [], message: `server name '${name}' (from the ${nameOrigin}) must use ${NAME_RULE}; add a valid 'name:' field` });
  }

  const typed = transportFromType(raw.type);
  if (raw.transport && typed && raw.transport !== typed) {
    problems.push({ path: ['type'], message: `type '${raw.type}' contradicts transport '${raw.transport}'; keep one of them` });
  }
  let transport = raw.transport ?? typed;
  if (!transport) {
    if (raw.command !== undefined && raw.url !== undefined) {
      problems.push({ path: ['url'], message: "both 'command' and 'url' given; keep 'command' for a local stdio server or 'url' for a remote one" });
    } else if (raw.command !== undefined) {
      transport = 'stdio';
    } else if (raw.url !== undefined) {
      transport = isSseUrl(raw.url) ? 'sse' : 'http';
    } else {
      problems.push({ path: [], message: "missing 'command' (to start a local server over stdio) or 'url' (to reach a remote server); add one" });
    }
  }

  let fileEnv: Record<string, string> | undefined;
  if (transport === 'stdio') {
    if (raw.command === undefined) problems.push({ path: ['transport'], message: "a stdio server needs 'command' (the program to start); add it" });
    if (raw.envFile !== undefined) {
      const read = readEnvFile(raw.envFile, dirs.baseDir);
      if (read.message) problems.push({ path: ['envFile'], message: read.message });
      fileEnv = read.env;
    }
    for (const key of ['url', 'headers'] as const) {
      if (raw[key] !== undefined) problems.push({ path: [key], message: `'${key}' is not used by stdio servers; remove it, or set transport to http, sse or a2a` });
    }
  } else if (transport) {
    if (raw.url === undefined) {
      problems.push({ path: ['transport'], message: `a ${transport} server needs 'url'; add it` });
    } else {
      let protocol = '';
      try {
        protocol = new URL(raw.url).protocol;
      } catch {
        problems.push({ path: ['url'], message: 'url is not a valid URL; write it as https://host/path' });
      }
      if (protocol && protocol !== 'http:' && protocol !== 'https:') {
        problems.push({ path: ['url'], message: `url must use http or https, not '${protocol}'` });
      }
    }
    for (const key of ['command', 'args', 'env', 'envFile', 'cwd'] as const) {
      if (raw[key] !== undefined) problems.push({ path: [key], message: `'${key}' is only used by stdio servers; remove it, or drop 'url'/'transport' to start a local command` });
    }
  }
  if (problems.length > 0 || !transport) return { problems };

  const fields: ServerFields = {
    name,
    transport,
    args: raw.args ?? [],
    // `env` wins over the env file, as in VS Code.
    env: fileEnv ? { ...fileEnv, ...raw.env } : (raw.env ?? {}),
    headers: raw.headers ?? {},
    tools: raw.tools ?? { include: ['*'], exclude: [] },
    timeoutMs: raw.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    connectTimeoutMs: raw.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleSeconds: raw.idleSeconds ?? DEFAULT_IDLE_SECONDS,
    breaker: { failures: raw.breaker?.failures ?? 5, cooldownSeconds: raw.breaker?.cooldownSeconds ?? 10 },
    session: raw.session ?? 'per-client',
    required: raw.required ?? false,
  };
  if (transport === 'stdio') {
    fields.command = raw.command;
    // A relative cwd belongs to the manifest, so a configuration works whatever the gateway's working directory.
    fields.cwd = raw.cwd !== undefined ? resolve(dirs.baseDir, raw.cwd) : dirs.workspaceDir;
  } else {
    fields.url = raw.url;
  }
  if (raw.identity) fields.identity = raw.identity;
  if (raw.protocol) {
    if (transport !== 'http') return { problems: [{ path: ['protocol'], message: "'protocol' is only used by http servers (stdio and sse upstreams speak 2025-11-25 through initialize); remove it" }] };
    fields.protocol = raw.protocol;
  }
  if (raw.allowOrigins) {
    if (transport !== 'a2a') return { problems: [{ path: ['allowOrigins'], message: "'allowOrigins' is only used by a2a servers; remove it" }] };
    fields.allowOrigins = raw.allowOrigins.map((o) => new URL(o).origin);
  }
  return { fields, problems };
}

interface EntryLocation {
  base: ValuePath;
  value: unknown;
  defaultName: string;
  nameOrigin: string;
  clientShape: boolean;
}

/** Where the server entries of a file are: the file itself, or each value of its `mcpServers` / `servers` map. */
function locateEntries(src: ParsedSource, data: Record<string, unknown>): { entries: EntryLocation[]; problems: ConfigProblem[] } {
  const manifestKeys = Object.keys(serverManifestSchema.shape);
  const mapKey =
    'mcpServers' in data
      ? 'mcpServers'
      : 'servers' in data && isPlainObject(data.servers) && !Object.keys(data).some((k) => manifestKeys.includes(k))
        ? 'servers'
        : undefined;
  if (!mapKey) {
    const stem = fileStem(src.file);
    return { entries: [{ base: [], value: data, defaultName: stem, nameOrigin: 'file name', clientShape: false }], problems: [] };
  }
  const map = data[mapKey];
  if (!isPlainObject(map)) {
    return {
      entries: [],
      problems: [{ file: src.file, line: src.lineAt([mapKey]), message: `'${mapKey}' must map server names to their settings, e.g. ${mapKey}: { memory: { command: node } }` }],
    };
  }
  // Other top-level keys of a client config belong to the client (shortcuts, inputs, preferences) and are ignored.
  const entries = Object.entries(map).map(([key, value]) => ({
    base: [mapKey, key],
    value,
    defaultName: key,
    nameOrigin: `${mapKey} key`,
    clientShape: true,
  }));
  return { entries, problems: [] };
}

const IDENTIFYING_KEYS = ['name', 'command', 'url', 'transport', 'type'];

/**
 * The checks across fields for the keys that passed the schema, so fixing the schema problems of an entry
 * reveals nothing new. Problems about the entry as a whole are left out when a key they depend on was bad.
 */
function checkRest(value: unknown, error: ZodError, schema: ZodTypeAny, entry: EntryLocation, dirs: { workspaceDir: string; baseDir: string }): PathProblem[] {
  if (!isPlainObject(value)) return [];
  const bad = new Set<string>();
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') issue.keys.forEach((k) => bad.add(k));
    else if (issue.path.length > 0) bad.add(String(issue.path[0]));
    else return [];
  }
  const rest = schema.safeParse(Object.fromEntries(Object.entries(value).filter(([k]) => !bad.has(k))));
  if (!rest.success) return [];
  const wholeEntryKnown = !IDENTIFYING_KEYS.some((k) => bad.has(k));
  return finishEntry(rest.data as RawServerEntry, entry.defaultName, entry.nameOrigin, dirs).problems.filter((p) =>
    p.path.length === 0 ? wholeEntryKnown : !bad.has(String(p.path[0])),
  );
}

/** Validate an already parsed servers.d file. */
export function readServerSource(src: ParsedSource, options: ServerLoadOptions = {}): ServerFileResult {
  if (src.problems.length > 0) return { servers: [], problems: src.problems, warnings: [] };
  if (src.data === undefined || src.data === null) return { servers: [], problems: [], warnings: [] };
  if (!isPlainObject(src.data)) {
    return {
      servers: [],
      warnings: [],
      problems: [{ file: src.file, line: src.lineAt([]), message: 'expected a mapping of server fields (name, command, url, …) or an mcpServers map' }],
    };
  }
  const workspaceDir = resolve(options.workspaceDir ?? process.cwd());
  const dataDir = resolve(workspaceDir, options.dataDir ?? 'data');
  const ctx = { env: options.env ?? process.env, baseDir: dirname(src.file), workspaceDir, dataDir };
  const { entries, problems } = locateEntries(src, src.data);
  const servers: ServerManifest[] = [];
  const warnings: ConfigProblem[] = [];

  for (const entry of entries) {
    if (!isPlainObject(entry.value)) {
      problems.push({ file: src.file, line: src.lineAt(entry.base), message: "expected a mapping with 'command' or 'url'" });
      continue;
    }
    if (entry.clientShape && entry.value.disabled === true) continue;
    const interpolated = interpolateTree(entry.value, ctx);
    let entryProblems = pathProblems(interpolated.problems, src, entry.base);
    const schema = entry.clientShape ? clientServerEntrySchema : serverManifestSchema;
    const parsed = schema.safeParse(interpolated.value);
    if (!parsed.success) {
      entryProblems = withoutRepeats(entryProblems, zodProblems(parsed.error, src, entry.base));
      entryProblems = withoutRepeats(entryProblems, pathProblems(checkRest(interpolated.value, parsed.error, schema, entry, ctx), src, entry.base));
    } else {
      const finished = finishEntry(parsed.data, entry.defaultName, entry.nameOrigin, ctx);
      entryProblems = withoutRepeats(entryProblems, pathProblems(finished.problems, src, entry.base));
      if (finished.fields && entryProblems.length === 0) {
        servers.push({ ...finished.fields, source: { file: src.file, line: src.lineAt(entry.base) } });
        const renamed = parsed.data.name === undefined ? renameWarning(entry.defaultName, finished.fields.name, entry.nameOrigin, 'name') : undefined;
        if (renamed) warnings.push({ file: src.file, line: src.lineAt(entry.base), message: renamed });
      }
    }
    problems.push(...entryProblems.sort((a, b) => a.line - b.line));
  }
  return { servers, problems, warnings };
}

/** Load one servers.d file; the file path is made absolute. */
export function loadServerFile(file: string, options: ServerLoadOptions = {}): ServerFileResult {
  return readServerSource(parseSourceFile(resolve(file)), options);
}

/**
 * Combine the servers of several files into one map. A name seen again is a problem on the later one.
 * `owners` (name → file) lets a file that already owns a name keep it when a newer file claims it too.
 */
export function mergeServers(
  files: Iterable<readonly [string, readonly ServerManifest[]]>,
  owners?: ReadonlyMap<string, string>,
): { servers: Map<string, ServerManifest>; problems: ConfigProblem[] } {
  const all = [...files].flatMap(([, list]) => list);
  const ordered = owners ? [...all].sort((a, b) => Number(owners.get(b.name) === b.source.file) - Number(owners.get(a.name) === a.source.file)) : all;
  const servers = new Map<string, ServerManifest>();
  const problems: ConfigProblem[] = [];
  for (const server of ordered) {
    const first = servers.get(server.name);
    if (first) {
      problems.push({
        file: server.source.file,
        line: server.source.line,
        message: `server name '${server.name}' is already used by ${first.source.file}:${first.source.line}; give one of them another name`,
      });
      continue;
    }
    servers.set(server.name, server);
  }
  return { servers, problems };
}

/** Load every manifest in a servers.d directory. A missing directory holds no servers. */
export function loadServersDir(dir: string, env: Env = process.env, options: Omit<ServerLoadOptions, 'env'> = {}): ServersLoadResult {
  const byFile = new Map<string, ServerFileResult>();
  for (const file of listConfigFiles(resolve(dir))) byFile.set(file, loadServerFile(file, { ...options, env }));
  const merged = mergeServers([...byFile].map(([file, r]) => [file, r.servers] as const));
  const problems = [...[...byFile.values()].flatMap((r) => r.problems), ...merged.problems];
  return { servers: merged.servers, problems, warnings: [...byFile.values()].flatMap((r) => r.warnings), byFile };
}
