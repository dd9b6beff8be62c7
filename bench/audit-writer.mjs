#!/usr/bin/env node
// The audit writer's own cost per record: the SQLite audit store records tool-call steps and commits them in
// transactions of `--batch` records on its own connection (the writer the thread runs, here on the main thread, so
// one process CPU figure holds all of it). A flush carries as many records as arrive in flushMs: about 60 at the
// HTTP bench's rates, the 500 of maxBatch in process (bench/step-path.mjs). What a transaction costs beyond its rows
// shows as the difference between batch sizes.
//
//   node bench/audit-writer.mjs [--records 30000] [--batch 60,500] [--rounds 2] [--root DIR]
//
// Prints CPU per record (process.cpuUsage) and the scavenges and mark-compacts per 1,000 records. Build first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, watchGc } from './proc.mjs';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '30000' },
    batch: { type: 'string', default: '60,500' },
    rounds: { type: 'string', default: '2' },
    // Another checkout's build to measure (e.g. the starting commit's), with this script.
    root: { type: 'string' },
  },
});
const RECORDS = Number(values.records);
const BATCHES = values.batch.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const BUILD = values.root ?? ROOT;
const { openDatabase } = await import(join(BUILD, 'dist/stores/sqlite/db.js'));
const { AuditStore } = await import(join(BUILD, 'dist/stores/sqlite/audit/store.js'));

const dir = mkdtempSync(join(tmpdir(), 'switchyard-audit-writer-'));
const db = openDatabase({ dataDir: dir });
const store = new AuditStore(db, { writer: 'inline', hmacKey: Buffer.alloc(32, 7) });
const caller = { agentId: 'bench-agent', principal: 'bench-agent', user: undefined, chain: ['bench-agent'], via: 'apikey' };

const gc = watchGc();

let stepNo = 0;
/** `n` steps as the gateway records them (args parsed from the request, as JSON-RPC hands them over), flushed every `batch`. */
function record(n, batch) {
  for (let i = 0; i < n; i++) {
    const step = {
      kind: 'tools/call',
      caller,
      workflowId: 'wf-0123456789abcdef',
      stepNo: ++stepNo,
      server: 'bench',
      target: 'add',
      exposedName: 'bench__add',
      args: JSON.parse('{"a":2,"b":3}'),
      startedAt: Date.now(),
    };
    store.record(step, { outcome: 'ok', durationMs: 0.4321, bytes: 80 });
    if ((i + 1) % batch === 0) store.flush();
  }
  store.flush();
}

/** GC entries reach the observer a few turns later (an immediate, then the observer's own queue): let them in. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

record(5000, 500); // warm-up: JIT, the page cache
console.log(`audit-writer: ${RECORDS} records per measurement, batches of ${BATCHES.join(' and ')}, ${BUILD}, Node ${process.version}`);
for (let round = 1; round <= ROUNDS; round++) {
  for (const batch of BATCHES) {
    await settle();
    const { minor, major } = gc;
    const cpu0 = process.cpuUsage();
    record(RECORDS, batch);
    const cpu = process.cpuUsage(cpu0);
    await settle();
    const perRecord = (cpu.user + cpu.system) / RECORDS;
    const scavenges = ((gc.minor - minor) * 1000) / RECORDS;
    const markCompacts = ((gc.major - major) * 1000) / RECORDS;
    console.log(`round ${round}  batch ${String(batch).padStart(5)}  ${perRecord.toFixed(2).padStart(6)} µs/record   per 1,000 records: ${scavenges.toFixed(2)} scavenges, ${markCompacts.toFixed(2)} mark-compacts`);
  }
}
gc.stop();
store.close();
db.close();
rmSync(dir, { recursive: true, force: true });
