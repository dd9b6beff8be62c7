/**
 * V8 settings for a long-running gateway process (`serve`, `stdio`), applied before it handles anything.
 *
 * Allocation-site pretenuring is turned off (decision 0047). V8 allocates an object literal's instances directly in
 * old space once most of them survived a scavenge, and does not look at that site again. Some of the gateway's
 * per-call sites get tenured that way (`--trace-pretenuring` shows it); each such old-space object then holds the
 * call's young objects (its request, reply, closures) alive through every later scavenge until a mark-compact. With
 * it on, 1.1–1.3 KB of each call was copied out of the young generation in bench/step-path.mjs; with it off,
 * 0.5–0.65 KB, which is what the bench's own harness promotes. A process started with an explicit
 * `--[no-]allocation-site-pretenuring` on its command line keeps its own choice (Node refuses the flag in NODE_OPTIONS).
 */
import { setFlagsFromString } from 'node:v8';

export function tuneHeapForServing(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => a.includes('allocation-site-pretenuring'))) return false;
  setFlagsFromString('--no-allocation-site-pretenuring');
  return true;
}
