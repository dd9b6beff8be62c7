/** stdio upstream: a child process speaking newline-delimited JSON-RPC; stderr goes to the gateway's log. */
import { spawn, type ChildProcess } from 'node:child_process';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import type { RpcMessage } from '../util/jsonrpc.js';
import type { UpstreamTransport } from './transport.js';

const MAX_LINE_BYTES = 16 * 1024 * 1024;

export class StdioTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  onerror?: UpstreamTransport['onerror'];
  private child?: ChildProcess;
  private buffer = '';
  private closed = false;

  constructor(private readonly manifest: ServerManifest, private readonly log: Logger) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    const m = this.manifest;
    if (!m.command) return Promise.reject(new Error(`server ${m.name}: stdio transport needs a command`));
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
      child.once('error', (err) => {
        reject(new Error(`server ${m.name}: cannot start '${m.command}': ${err.message}. Check the command and args in ${m.source.file}.`));
        this.finish(`spawn error: ${err.message}`);
      });
      child.once('exit', (code, signal) => this.finish(signal ? `exited on ${signal}` : `exited with code ${code}`));
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => this.onData(chunk));
      child.stdin!.on('error', (err) => this.onerror?.(err));
      let errLine = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        errLine += chunk;
        let nl: number;
        while ((nl = errLine.indexOf('\n')) >= 0) {
          const line = errLine.slice(0, nl).trimEnd();
          errLine = errLine.slice(nl + 1);
          if (line) this.log.info({ stderr: line }, 'upstream stderr');
        }
      });
    });
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
      this.onmessage?.(msg);
    }
    if (this.buffer.length > MAX_LINE_BYTES) {
      this.onerror?.(new Error(`server ${this.manifest.name}: a message exceeded ${MAX_LINE_BYTES} bytes`));
      void this.close();
    }
  }

  send(message: RpcMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.closed || !stdin.writable) return Promise.reject(new Error(`server ${this.manifest.name} is not running`));
    const ok = stdin.write(JSON.stringify(message) + '\n');
    if (ok) return Promise.resolve();
    return new Promise((resolve) => stdin.once('drain', resolve));
  }

  private finish(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.(why);
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.finish('closed');
      return;
    }
    // Close stdin first (the polite stdio shutdown), then escalate.
    child.stdin?.end();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const t1 = setTimeout(() => child.kill('SIGTERM'), 1000);
    const t2 = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t1);
    clearTimeout(t2);
    this.finish('closed');
  }
}
