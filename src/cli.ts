/** The `switchyard` command: serve | stdio | validate | audit verify. */
import { parseArgs } from 'node:util';
import { startGateway, StartupError } from './app.js';
import { createLogger } from './telemetry/logger.js';

const USAGE = `switchyard — an MCP-first agent gateway

Usage:
  switchyard serve [--config gateway.yaml] [--servers servers.d] [--agents agents.d] [--host H] [--port N] [--data DIR]
  switchyard stdio [--agent ID | --token JWT] [--config …] [--servers …] [--agents …] [--data …]
  switchyard validate [paths…]
  switchyard audit verify [--data DIR] [--key FILE]
  switchyard keys rotate [--data DIR]
`;

const commonOptions = {
  config: { type: 'string' },
  servers: { type: 'string' },
  agents: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'stdio': {
      const { runStdio } = await import('./downstream/mcp-stdio.js');
      return runStdio(rest);
    }
    case 'validate': {
      const { runValidate } = await import('./validate-cli.js');
      return runValidate(rest);
    }
    case 'keys':
      return (await import('./keys-cli.js')).runKeysCommand(rest);
    case 'audit': {
      const { runAuditCommand } = await import('./audit-cli.js');
      return runAuditCommand(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`unknown command '${command}'\n\n${USAGE}`);
      return 1;
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: commonOptions, allowPositionals: false });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = createLogger();
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`--port must be a number from 0 to 65535, got '${values.port}'\n`);
      return 1;
    }
  }
  try {
    const gw = await startGateway({
      configPath: values.config,
      overrides: { host: values.host, port, serversDir: values.servers, agentsDir: values.agents, dataDir: values.data },
      logger: log,
    });
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      void gw.close().then(
        (report) => process.exit(report.auditUnwritten > 0 ? 1 : 0),
        (err: Error) => {
          log.error({ err: err.stack }, 'shutdown failed; queued audit records may not have been written, check with `switchyard audit verify`');
          process.exit(1);
        },
      );
      setTimeout(() => {
        log.error('shutdown did not finish within 5 s; queued audit records may not have been written, check with `switchyard audit verify`');
        process.exit(1);
      }, 5000).unref();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    return await new Promise<number>(() => {});
  } catch (err) {
    if (err instanceof StartupError) {
      log.fatal(err.message);
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
