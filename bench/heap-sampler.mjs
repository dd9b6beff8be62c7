// Preloaded into a measured process (`node --import bench/heap-sampler.mjs …`, as `npm run bench -- --heap-profile
// DIR` does): from the first SIGUSR2 (the bench sends it after its warm-up) to exit, samples allocations and writes a
// .heapprofile into $SWITCHYARD_HEAP_PROFILE_DIR when the process exits. Open it in Chrome DevTools (Memory tab) or
// sum it by function with `node bench/heap-summary.mjs FILE CALLS`.
//
// $SWITCHYARD_HEAP_PROFILE_KEEP chooses which samples stay in the profile:
//   all       (default) every allocation, collected or not: where the garbage of a call is made
//   promoted  what no minor GC freed: what survived scavenges (copied, then promoted) or was allocated in old space,
//             which is what makes scavenges slow and mark-compacts frequent
//   live      what is still alive at exit
// Keeping every sample changes what it measures: in bench/step-path.mjs the process then promotes three times as much
// per call (`--trace-gc-nvp`), so CPU figures of such a run are not comparable. `promoted` leaves promotion as it is.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.SWITCHYARD_HEAP_PROFILE_DIR;
const keep = process.env.SWITCHYARD_HEAP_PROFILE_KEEP ?? 'all';
if (!['all', 'promoted', 'live'].includes(keep)) throw new Error(`SWITCHYARD_HEAP_PROFILE_KEEP must be all, promoted or live, not '${keep}'`);
// Worker threads inherit --import; only the main thread is sampled (the audit writer allocates on its own heap).
if (dir && isMainThread) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (sampling) return;
    sampling = true;
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: keep !== 'live',
      includeObjectsCollectedByMinorGC: keep === 'all',
    });
  });
  // A process with no SIGTERM handler of its own (the pipes) would die without 'exit': end it so the profile is written.
  process.on('SIGTERM', () => {
    if (process.listenerCount('SIGTERM') === 1) process.exit(0);
  });
  // An in-thread session answers synchronously, so the profile can be taken in the exit handler itself.
  process.once('exit', () => {
    if (!sampling) return;
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `heap-${process.pid}-${Date.now()}.heapprofile`), JSON.stringify(res.profile));
    });
  });
}
