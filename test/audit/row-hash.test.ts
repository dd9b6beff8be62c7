import { describe, expect, it } from 'vitest';
import { chainRow, rowFields, toRow, type PendingRecord, type RowFormat } from '../../src/audit/rows.js';
import { compileRedactor } from '../../src/audit/redact.js';

const format: RowFormat = { redactor: compileRedactor(['password']), maxArgsLength: 65_536, key: Buffer.alloc(32, 7) };

const call: PendingRecord = {
  time: 1767225600000.4,
  workflowId: 'wf-golden',
  step: 3,
  parentStep: 2,
  agent: 'agent-a',
  user: 'alice@example.com',
  chain: ['root', 'agent-a'],
  kind: 'tools/call',
  server: 'github',
  tool: 'search',
  args: { q: 'caf\u00e9 \ud800', password: 'x' },
  outcome: 'ok',
  reason: undefined,
  durationMs: 1.23456,
  bytes: 120,
  tokens: undefined,
  traceparent: undefined,
};
const modelCall: PendingRecord = {
  ...call,
  kind: 'model/call',
  model: { name: 'gpt-4o', team: 't', costUsd: 0.002, info: { provider: 'openai' }, bodies: { messages: [{ content: 'hi' }] } },
};

describe('stored row hashes', () => {
  // Computed by the writer before its rows were built in place: existing chains verify only if these never change.
  it('stay byte for byte what earlier versions stored, keyed and plain, with and without model fields', () => {
    expect(toRow(call, 41, 'a'.repeat(64), format).hash).toBe('a262ad1c56a685030f724ef378a5c175140f3b28f6a7a0841ae5a6603d5adc66');
    expect(toRow(call, 41, 'a'.repeat(64), { ...format, key: undefined }).hash).toBe('a78f4fd4bfca26bd8b471e772fb42be0ed4444793f66df89f18b10fec4bb2e9f');
    expect(toRow(modelCall, 42, 'b'.repeat(64), format).hash).toBe('4c158f83cd2201eb7ca3bab3647ec088cf4bfe2b10bf96ce63e400ab61505b9c');
  });

  it('are the same row whether built in place (SQLite writer) or chained from prepared fields (PostgreSQL writer)', () => {
    const fields = rowFields(modelCall, format);
    expect(toRow(modelCall, 42, 'b'.repeat(64), format)).toEqual(chainRow(fields, 42, 'b'.repeat(64), format.key));
    // chainRow leaves the prepared fields as they were, so a retried batch chains them again from a new head.
    expect(fields).not.toHaveProperty('hash');
  });
});
