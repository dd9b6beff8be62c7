/** The `switchyard` command: serve | stdio | validate | audit verify. */
import { parseArgs } from 'node:util';
import { startGateway, StartupError } from './app.js';
import { createLogger } from './telemetry/logger.js';
import { tuneHeapForServing } from './util/heap-tuning.js';

const USAGE = `switchyard — an MCP-first agent gateway

Usage:
  switchyard serve [--config gateway.yaml] [--servers servers.d] [--agents agents.d] [--host H] [--port N] [--data DIR]
  switchyard stdio [--agent ID | --token JWT] [--config …] [--servers …] [--agents …] [--data …]
  switchyard validate [paths…]
  switchyard audit verify [--config FILE] [--data DIR] [--postgres URL] [--key FILE]
  switchyard keys rotate [--config FILE] [--data DIR] [--postgres URL]
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

/** Exit code of a command line that cannot be run as written. */
export const USAGE_EXIT = 2;

function usageOf(command: string): string {
  const line = USAGE.split('\n').find((l) => l.trim().startsWith(`switchyard ${command} `) || l.trim() === `switchyard ${command}`);
  return line ? line.trim() : 'switchyard --help';
}

/** node:util parseArgs failures as one sentence naming the flag, and the command's usage as the hint. */
function usageProblem(err: unknown, command: string): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (!code.startsWith('ERR_PARSE_ARGS_')) return undefined;
  const message = (err as Error).message;
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  const what =
    code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
      ? `unknown option '${quoted}'`
      : code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
        ? `unexpected argument '${quoted}'`
        : code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && /argument missing/.test(message)
          ? `option '${quoted.replace(/ <value>$/, '')}' needs a value`
          : message.split('. ')[0]!;
  return `switchyard ${command}: ${what}; usage: ${usageOf(command)}`;
}

export async function main(argv: string[]): Promise<number> {
  try {
    return await runCommand(argv);
  } catch (err) {
    const problem = usageProblem(err, argv[0] ?? '');
    if (problem === undefined) throw err;
    process.stderr.write(`${problem}\n`);
    return USAGE_EXIT;
  }
}

async function runCommand(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      tuneHeapForServing();
      return serve(rest);
    case 'stdio': {
      tuneHeapForServing();
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
      if (command === undefined) {
        process.stderr.write(USAGE);
        return USAGE_EXIT;
      }
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command '${command}'; the commands are serve, stdio, validate, audit and keys (switchyard --help)\n`);
      return USAGE_EXIT;
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
      process.stderr.write(`switchyard serve: --port must be a number from 0 to 65535, got '${values.port}'; pass e.g. --port 8080\n`);
      return USAGE_EXIT;
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
      // A terminal shows stdout and stderr together: say it once there; log collectors get the JSON line too.
      if (!process.stdout.isTTY) log.fatal(err.message);
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
