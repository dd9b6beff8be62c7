/** pino JSON lines on stdout; human-readable when stdout is a terminal. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** pino-pretty settings for a terminal: one line per record, fields after the message, so a step is one line. */
export const PRETTY_OPTIONS = { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' } as const;

export function createLogger(opts: { level?: string; destination?: 'stdout' | 'stderr' } = {}): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? 'info';
  const fd = opts.destination === 'stderr' ? 2 : 1;
  const tty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  if (tty && process.env.LOG_FORMAT !== 'json') {
    return pino({
      level,
      base: { name: 'switchyard' },
      transport: { target: 'pino-pretty', options: { ...PRETTY_OPTIONS, destination: fd } },
    });
  }
  return pino({ level, base: { name: 'switchyard' } }, pino.destination({ fd, sync: false }));
}
