/** `switchyard stdio`: the federated MCP server over stdin/stdout, for clients that only launch commands. Logs go to stderr. */
import { parseArgs } from 'node:util';
import { createCore, StartupError } from '../app.js';
import type { ReplyChannel } from '../gateway/channel.js';
import type { ClientSession } from '../gateway/client-session.js';
import { dispatch } from '../gateway/dispatch.js';
import type { Caller } from '../gateway/types.js';
import { createLogger } from '../telemetry/logger.js';
import { checkEnvelope, errorResponse, isRequest, RpcErrorCode, type RpcMessage } from '../util/jsonrpc.js';
import { ModernMcp } from './mcp-2026/handler.js';
import { claimsModernLine, StdioModern } from './mcp-2026/stdio.js';

export async function runStdio(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      servers: { type: 'string' },
      agents: { type: 'string' },
      data: { type: 'string' },
      agent: { type: 'string' },
      token: { type: 'string' },
    },
  });
  const log = createLogger({ destination: 'stderr' });
  let core;
  try {
    core = await createCore({ configPath: values.config, overrides: { serversDir: values.servers, agentsDir: values.agents, dataDir: values.data }, logger: log });
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  let caller: Caller;
  if (values.token) {
    // A token is verified exactly as on HTTP (issuer JWT, minted delegation token or API key).
    const outcome = await core.authenticator.authenticate({ authorization: `Bearer ${values.token}`, remoteAddress: '127.0.0.1' });
    if (!outcome.ok) {
      process.stderr.write(`--token refused: ${outcome.message}\n`);
      await core.close();
      return 1;
    }
    caller = outcome.caller;
  } else {
    // The process owner launched us: act as the named agent (or `local`), with its agents.d policy.
    const agentId = values.agent ?? 'local';
    caller = { agentId, principal: `local:${agentId}`, chain: [agentId], via: 'local', agent: core.registry.get(agentId) };
    if (values.agent && !caller.agent && agentId !== 'local') {
      process.stderr.write(`unknown agent '${agentId}': add agents.d/${agentId}.yaml or omit --agent\n`);
      await core.close();
      return 1;
    }
  }
  const write = (msg: RpcMessage): void => {
    process.stdout.write(`${JSON.stringify(msg)}\n`);
  };
  const reply = (): ReplyChannel => ({ related: write, final: write, gone: false });
  let session: ClientSession | undefined;
  // Lines that claim 2026-07-28 (before any initialize) are served per request, as on HTTP.
  const modern = new StdioModern(new ModernMcp(core.gateway), caller, write);

  const onLine = async (line: string): Promise<void> => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      return write(errorResponse(null, RpcErrorCode.ParseError, `Parse error: ${(err as Error).message}`));
    }
    const msg = checkEnvelope(parsed);
    if (typeof msg === 'string') return write(errorResponse(null, RpcErrorCode.InvalidRequest, `Invalid Request: ${msg}`));
    if (!session && claimsModernLine(msg)) return modern.serve(msg);
    if (isRequest(msg) && msg.method === 'initialize') {
      if (session) return write(errorResponse(msg.id, RpcErrorCode.InvalidRequest, 'Already initialized'));
      const r = await core.gateway.initialize(msg.params ?? {}, caller, {});
      session = r.session;
      session.attachStream({ send: write });
      return write({ jsonrpc: '2.0', id: msg.id, result: r.result });
    }
    if (!session) {
      if (isRequest(msg)) write(errorResponse(msg.id, RpcErrorCode.InvalidRequest, 'Send initialize first'));
      return;
    }
    await dispatch(core.gateway, session, msg, isRequest(msg) ? reply() : undefined);
  };

  let buffer = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line) onLine(line).catch((err: Error) => log.error({ err: err.stack }, 'stdio message failed'));
    }
  });
  return new Promise<number>((resolve) => {
    let stopping = false;
    // stdin closing and SIGTERM (how clients stop their servers) both flush the audit trail before exiting.
    const stop = (why: string): void => {
      if (stopping) return;
      stopping = true;
      void (async () => {
        if (session) await core.gateway.closeSession(session, why);
        await modern.close();
        const report = await core.close();
        resolve(report.auditUnwritten > 0 ? 1 : 0);
      })();
    };
    process.stdin.once('end', () => stop('stdin closed'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
