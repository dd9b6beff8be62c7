/** Temp directories with real files, and waiting on events with a deadline instead of sleeping. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { EventEmitter } from 'node:events';

export interface TempDir {
  root: string;
  /** Write a file (creating parent folders); returns its absolute path. */
  write(rel: string, text: string): string;
  path(rel: string): string;
  remove(): void;
}

export function tempDir(prefix = 'switchyard-config-'): TempDir {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return {
    root,
    write(rel, text) {
      const full = join(root, rel);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, text);
      return full;
    },
    path: (rel) => join(root, rel),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Resolve with the first emitted value that satisfies `accept`, or reject after `timeoutMs`. */
export function nextEvent<T>(emitter: EventEmitter, event: string, accept: (value: T) => boolean = () => true, timeoutMs = 2000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`no matching '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    function onEvent(value: T): void {
      if (!accept(value)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(value);
    }
    emitter.on(event, onEvent);
  });
}

export const HASH_A = `sha256:${'a'.repeat(64)}`;
export const HASH_B = `sha256:${'b'.repeat(64)}`;
