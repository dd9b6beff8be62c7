// Loaded into the measured gateway with --import (and --expose-gc): on SIGUSR2 it collects garbage and prints the
// process's memory as one `MEM {...}` line on stderr, so the memory bench reads live heap rather than garbage.
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  process.stderr.write(`MEM ${JSON.stringify(process.memoryUsage())}\n`);
});
