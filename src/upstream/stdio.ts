/** stdio upstream: a child process speaking newline-delimited JSON-RPC; stderr goes to the gateway's log. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import { isRequest, type RpcMessage } from '../util/jsonrpc.js';
import { keepWire } from '../util/raw-response.js';
import { UpstreamError } from './errors.js';
import type { SendOptions, UpstreamTransport } from './transport.js';

const MAX_LINE_BYTES = 16 * 1024 * 1024;
const STDERR_TAIL_LINES = 5;
const STDERR_LINE_MAX = 200;
const STDERR_DRAIN_MS = 500;

/** Why a child could not be spawned, e.g. command 'foo' not found (ENOENT). */
function spawnFailure(m: ServerManifest, err: NodeJS.ErrnoException): UpstreamError {
  const cmd = `'${m.command}'`;
  if (err.code === 'ENOENT') {
    return m.cwd && !existsSync(m.cwd)
      ? new UpstreamError(m.name, 'spawn_failed', 'its working directory does not exist', { operator: `working directory '${m.cwd}' does not exist (ENOENT)`, field: '`cwd`' })
      : new UpstreamError(m.name, 'not_found', 'its command was not found', { operator: `command ${cmd} not found (ENOENT)`, field: '`command`' });
  }
  if (err.code === 'EACCES') return new UpstreamError(m.name, 'spawn_failed', 'its command may not be executed', { operator: `command ${cmd} is not executable (EACCES)`, field: '`command`' });
  return new UpstreamError(m.name, 'spawn_failed', 'its command could not be started', { operator: `command ${cmd} could not be started (${err.code ?? err.message})`, field: '`command`' });
}

/** stdio has no headers: trace context crosses in the request's `_meta` (as MCP suggests), everything else stays. */
export function withTraceContext(message: RpcMessage, traceparent: string | undefined): RpcMessage {
  if (!traceparent || !isRequest(message)) return message;
  const params = message.params;
  return { ...message, params: { ...params, _meta: { ...(params?._meta as object | undefined), traceparent } } };
}

export class StdioTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  onerror?: UpstreamTransport['onerror'];
  private child?: ChildProcess;
  private buffer = '';
  private closed = false;
  private closing = false;
  private readonly stderrTail: string[] = [];

  constructor(private readonly manifest: ServerManifest, private readonly log: Logger) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    const m = this.manifest;
    if (!m.command) return Promise.reject(new UpstreamError(m.name, 'spawn_failed', 'it has no command to start', { field: '`command`' }));
    return new Promise((resolve, reject) => {
      // Merge the manifest's env over the SDK's safe defaults: a bare env would drop PATH and HOME.
      const child = spawn(m.command!, m.args, {
        cwd: m.cwd,
        env: { ...getDefaultEnvironment(), ...m.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      this.child = child;
      child.once('spawn', () => resolve());
      child.once('error', (err: NodeJS.ErrnoException) => {
        const cause = spawnFailure(m, err);
        reject(cause);
        this.finish(cause);
      });
      child.once('exit', (code, signal) => {
        if (this.closing) return this.finish();
        // The exit can be seen before the last stderr lines are read: report it once stderr is drained.
        const report = () => this.finish(this.exitFailure(code, signal));
        if (child.stderr!.readableEnded) return report();
        child.stderr!.once('end', report);
        setTimeout(report, STDERR_DRAIN_MS).unref();
      });
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => this.onData(chunk));
      child.stdin!.on('error', (err) => this.onerror?.(err));
      let errLine = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        errLine += chunk;
        let nl: number;
        while ((nl = errLine.indexOf('\n')) >= 0) {
          this.onStderrLine(errLine.slice(0, nl));
          errLine = errLine.slice(nl + 1);
        }
      });
      child.stderr!.prependOnceListener('end', () => this.onStderrLine(errLine));
    });
  }

  private onStderrLine(raw: string): void {
    const line = raw.trimEnd();
    if (!line) return;
    this.log.info({ stderr: line }, 'upstream stderr');
    this.stderrTail.push(line.length > STDERR_LINE_MAX ? `${line.slice(0, STDERR_LINE_MAX)}…` : line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
  }

  /** An exit the gateway did not ask for, with the last stderr lines for the operator. */
  private exitFailure(code: number | null, signal: NodeJS.Signals | null): UpstreamError {
    const how = signal ? `it exited on ${signal}` : `it exited with code ${code}`;
    const tail = this.stderrTail.length ? `; its last stderr lines: ${this.stderrTail.map((l) => JSON.stringify(l)).join(' / ')}` : '; it wrote nothing to stderr';
    return new UpstreamError(this.manifest.name, 'exited', how, { operator: `${how}${tail}`, field: '`command` and `args`' });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: RpcMessage;
      try {
        msg = JSON.parse(line) as RpcMessage;
      } catch {
        this.log.warn({ line: line.slice(0, 200) }, 'upstream wrote a non-JSON line on stdout; ignored');
        continue;
      }
      keepWire(msg, line);
      this.onmessage?.(msg, undefined, Buffer.byteLength(line));
    }
    if (this.buffer.length > MAX_LINE_BYTES) {
      this.finish(new UpstreamError(this.manifest.name, 'failed', `it sent a message over ${MAX_LINE_BYTES} bytes`));
      void this.close();
    }
  }

  send(message: RpcMessage, options?: SendOptions): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.closed || !stdin.writable) return Promise.reject(new UpstreamError(this.manifest.name, 'closed', 'it is not running'));
    const ok = stdin.write(JSON.stringify(withTraceContext(message, options?.headers?.traceparent)) + '\n');
    if (ok) return Promise.resolve();
    return new Promise((resolve) => stdin.once('drain', resolve));
  }

  private finish(cause?: UpstreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.(cause);
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.finish();
      return;
    }
    this.closing = true;
    // Close stdin first (the polite stdio shutdown), then escalate.
    child.stdin?.end();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const t1 = setTimeout(() => child.kill('SIGTERM'), 1000);
    const t2 = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t1);
    clearTimeout(t2);
    this.finish();
  }
}
