import { prettyFactory } from 'pino-pretty';
import { describe, expect, it } from 'vitest';
import { PRETTY_OPTIONS } from '../../src/telemetry/logger.js';

describe('terminal log format', () => {
  it('prints a step record with all its fields on one line', () => {
    const pretty = prettyFactory({ ...PRETTY_OPTIONS, colorize: false });
    const record = {
      level: 30,
      time: 0,
      name: 'switchyard',
      workflowId: 'wf-1',
      step: 3,
      agent: 'local',
      kind: 'tools/call',
      server: 'fx',
      tool: 'echo',
      outcome: 'refused',
      reason: 'budget_exceeded',
      durationMs: 2,
      msg: 'step',
    };
    const out = pretty(record);
    expect(out.trimEnd().split('\n')).toHaveLength(1);
    expect(out).toContain('step');
    expect(out).toContain('"reason":"budget_exceeded"');
  });
});
