/**
 * Hot reload of servers.d and agents.d. fs.watch gives quick notice; a 1 s poll of names, sizes and mtimes
 * catches what fs.watch misses (network and container filesystems, a directory created later).
 * A file that turns broken keeps the last good version of what it defined; other files are untouched.
 */
import { EventEmitter } from 'node:events';
import { statSync, watch, type FSWatcher } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../telemetry/logger.js';
import type { AgentManifest, ConfigProblem, ServerManifest } from './types.js';
import type { Env } from './interpolate.js';
import { loadServerFile, mergeServers } from './servers.js';
import { loadAgentFile, mergeAgents } from './agents.js';
import { formatProblem, listConfigFiles } from './problems.js';

export interface ServersChange {
  added: ServerManifest[];
  changed: ServerManifest[];
  /** Names of servers that are gone. */
  removed: string[];
  /** The whole set now in force. */
  servers: Map<string, ServerManifest>;
  problems: ConfigProblem[];
}

export interface AgentsChange {
  added: string[];
  changed: string[];
  removed: string[];
  agents: Map<string, AgentManifest>;
  problems: ConfigProblem[];
}

export interface ConfigWatcherEvents {
  servers: [ServersChange];
  agents: [AgentsChange];
}

export interface ConfigWatcherOptions {
  serversDir: string;
  agentsDir: string;
  logger: Logger;
  env?: Env;
  /** The gateway's working directory (default `cwd` of stdio servers). */
  workspaceDir?: string;
  /** The gateway's data directory, for `${dataDir}` in manifests. */
  dataDir?: string;
  debounceMs?: number;
  pollMs?: number;
  /** false: rely on polling alone (filesystems where fs.watch is unreliable). Default true. */
  fsWatch?: boolean;
}

/** JSON with object keys sorted, so equal manifests serialize equally. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

type Sourced = { source: { file: string; line: number } };

/** Equality ignores where in the file a manifest starts: moving lines around is not a change. */
export function manifestFingerprint(manifest: Sourced): string {
  return stableJson({ ...manifest, source: { file: manifest.source.file } });
}

interface DirKind<T extends Sourced> {
  label: 'servers' | 'agents';
  keyOf(item: T): string;
  loadFile(file: string): { items: T[]; problems: ConfigProblem[]; warnings?: ConfigProblem[] };
  merge(files: [string, T[]][], owners: ReadonlyMap<string, string>): { items: Map<string, T>; problems: ConfigProblem[] };
}

interface DirDiff<T> {
  added: T[];
  changed: T[];
  removed: string[];
  items: Map<string, T>;
  problems: ConfigProblem[];
}

/** One watched directory: its last good manifests per file, and the merged set in force. */
class WatchedDir<T extends Sourced> {
  items = new Map<string, T>();
  problems: ConfigProblem[] = [];
  private goodByFile = new Map<string, T[]>();
  private problemsKey = '[]';
  private warningsKey = '[]';
  private loaded = false;
  private signature = '';
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly kind: DirKind<T>,
    private readonly log: Logger,
    private readonly debounceMs: number,
    private readonly useFsWatch: boolean,
    private readonly onDiff: (diff: DirDiff<T>) => void,
  ) {}

  /** Read the directory now; returns what changed (nothing is emitted). */
  reload(): DirDiff<T> {
    this.signature = this.currentSignature();
    const nextGood = new Map<string, T[]>();
    const fileProblems: ConfigProblem[] = [];
    const warnings: ConfigProblem[] = [];
    for (const file of listConfigFiles(this.dir)) {
      const result = this.kind.loadFile(file);
      const lastGood = this.goodByFile.get(file);
      if (result.problems.length > 0) fileProblems.push(...result.problems);
      if (result.warnings) warnings.push(...result.warnings);
      // A broken file keeps what it last defined well; a new file contributes whatever parts are valid.
      nextGood.set(file, result.problems.length > 0 && lastGood ? lastGood : result.items);
    }
    const owners = new Map([...this.items].map(([key, item]) => [key, item.source.file] as const));
    const merged = this.kind.merge([...nextGood], owners);
    const problems = [...fileProblems, ...merged.problems];

    const added: T[] = [];
    const changed: T[] = [];
    for (const [key, item] of merged.items) {
      const before = this.items.get(key);
      if (!before) added.push(item);
      else if (manifestFingerprint(before) !== manifestFingerprint(item)) changed.push(item);
      // Untouched manifests keep their identity, so consumers may compare by reference.
      else if (stableJson(before) === stableJson(item)) merged.items.set(key, before);
    }
    const removed = [...this.items.keys()].filter((key) => !merged.items.has(key));

    this.goodByFile = nextGood;
    this.items = merged.items;
    this.problems = problems;
    const problemsKey = JSON.stringify(problems);
    const problemsChanged = problemsKey !== this.problemsKey;
    this.problemsKey = problemsKey;
    if (problemsChanged) {
      for (const p of problems) this.log.warn({ file: p.file, line: p.line }, `${this.kind.label}: ${formatProblem(p)}`);
    }
    const warningsKey = JSON.stringify(warnings);
    if (warningsKey !== this.warningsKey) {
      for (const w of warnings) this.log.warn({ file: w.file, line: w.line }, `${this.kind.label}: ${formatProblem(w)}`);
    }
    this.warningsKey = warningsKey;
    const diff = { added, changed, removed, items: merged.items, problems };
    // The first read is part of the startup line; later ones are reloads, each said once here.
    if (added.length + changed.length + removed.length > 0) {
      this.log[this.loaded ? 'info' : 'debug'](
        { added: added.map(this.kind.keyOf), changed: changed.map(this.kind.keyOf), removed },
        `${this.kind.label} ${this.loaded ? 'reloaded' : 'loaded'} from ${this.dir}`,
      );
    }
    this.loaded = true;
    if (added.length + changed.length + removed.length > 0 || problemsChanged) this.onDiff(diff);
    return diff;
  }

  /** Names, sizes and mtimes of the manifest files: the poll compares this. */
  private currentSignature(): string {
    return listConfigFiles(this.dir)
      .map((file) => {
        try {
          const st = statSync(file);
          return `${file}\0${st.size}\0${st.mtimeMs}`;
        } catch {
          return `${file}\0gone`;
        }
      })
      .join('\n');
  }

  schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      try {
        this.reload();
      } catch (err) {
        this.log.error({ err }, `${this.kind.label}: reload of ${this.dir} failed; the previous configuration stays in force`);
      }
    }, this.debounceMs);
    this.debounce.unref();
  }

  poll(): void {
    this.ensureWatching();
    if (this.currentSignature() !== this.signature) this.schedule();
  }

  /** Attach fs.watch when the directory exists; re-attach after it was removed and created again. */
  ensureWatching(): void {
    if (this.watcher || !this.useFsWatch) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => this.schedule());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
        this.schedule();
      });
    } catch {
      // Directory absent: the poll notices when it appears.
      this.watcher = undefined;
    }
  }

  close(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }
}

export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  private readonly serverDir: WatchedDir<ServerManifest>;
  private readonly agentDir: WatchedDir<AgentManifest>;
  private readonly pollTimer: NodeJS.Timeout;

  /** Loads both directories at once (read `servers`, `agents`, `problems` right after) and starts watching. */
  constructor(options: ConfigWatcherOptions) {
    super();
    const debounceMs = options.debounceMs ?? 150;
    const env = options.env ?? process.env;
    const { workspaceDir, dataDir } = options;
    const useFsWatch = options.fsWatch ?? true;
    this.serverDir = new WatchedDir<ServerManifest>(
      resolve(options.serversDir),
      {
        label: 'servers',
        keyOf: (s) => s.name,
        loadFile: (file) => {
          const r = loadServerFile(file, { env, workspaceDir, dataDir });
          return { items: r.servers, problems: r.problems, warnings: r.warnings };
        },
        merge: (files, owners) => {
          const r = mergeServers(files, owners);
          return { items: r.servers, problems: r.problems };
        },
      },
      options.logger,
      debounceMs,
      useFsWatch,
      (d) => this.emit('servers', { added: d.added, changed: d.changed, removed: d.removed, servers: new Map(d.items), problems: d.problems }),
    );
    this.agentDir = new WatchedDir<AgentManifest>(
      resolve(options.agentsDir),
      {
        label: 'agents',
        keyOf: (a) => a.id,
        loadFile: (file) => {
          const r = loadAgentFile(file);
          return { items: r.agents, problems: r.problems, warnings: r.warnings };
        },
        merge: (files, owners) => {
          const r = mergeAgents(files, owners);
          return { items: r.agents, problems: r.problems };
        },
      },
      options.logger,
      debounceMs,
      useFsWatch,
      (d) =>
        this.emit('agents', {
          added: d.added.map((a) => a.id),
          changed: d.changed.map((a) => a.id),
          removed: d.removed,
          agents: new Map(d.items),
          problems: d.problems,
        }),
    );
    for (const dir of [this.serverDir, this.agentDir]) {
      dir.reload();
      dir.ensureWatching();
    }
    this.pollTimer = setInterval(() => {
      this.serverDir.poll();
      this.agentDir.poll();
    }, options.pollMs ?? 1000);
    this.pollTimer.unref();
  }

  get servers(): ReadonlyMap<string, ServerManifest> {
    return this.serverDir.items;
  }

  get agents(): ReadonlyMap<string, AgentManifest> {
    return this.agentDir.items;
  }

  /** Problems of the configuration now in force (broken files keep running their last good version). */
  get problems(): ConfigProblem[] {
    return [...this.serverDir.problems, ...this.agentDir.problems];
  }

  /** Re-read both directories now (e.g. on SIGHUP or an admin request); events fire as for a file change. */
  reload(): void {
    this.serverDir.reload();
    this.agentDir.reload();
  }

  close(): void {
    clearInterval(this.pollTimer);
    this.serverDir.close();
    this.agentDir.close();
  }
}
