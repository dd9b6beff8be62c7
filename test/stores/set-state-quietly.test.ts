// setStateQuietly: callers that do not wait for a state change (session end, loop trip) see an embedded store's
// refusal at once and a shared store's rejection later, both through onError, never as an unhandled rejection.
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/gateway/types.js';
import { MemoryWorkflows } from '../../src/stores/memory/workflows.js';
import { setStateQuietly, WorkflowError } from '../../src/stores/workflows.js';

const root: Caller = { agentId: 'root', principal: 'root', chain: ['root'], via: 'apikey' };

describe('setStateQuietly', () => {
  it('applies an embedded store change synchronously and reports its refusal synchronously', () => {
    const w = new MemoryWorkflows();
    const id = w.begin({ caller: root, kind: 'mcp' });
    const errors: Error[] = [];
    setStateQuietly(w, id, 'killed', 'admin', (e) => errors.push(e));
    expect(w.state(id)).toBe('killed');
    setStateQuietly(w, id, 'active', undefined, (e) => errors.push(e));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(WorkflowError);
  });

  it("hands a shared store's rejection to onError", async () => {
    const errors: Error[] = [];
    const rejected = new Promise<void>((_, reject) => setImmediate(() => reject(new WorkflowError('illegal_transition', 'workflow w is killed and cannot become done'))));
    setStateQuietly({ setState: () => rejected }, 'w', 'done', undefined, (e) => errors.push(e));
    expect(errors).toHaveLength(0);
    await rejected.catch(() => {});
    await Promise.resolve();
    expect(errors.map((e) => e.message)).toEqual(['workflow w is killed and cannot become done']);
  });
});
