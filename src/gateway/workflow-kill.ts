/** Killing a workflow cancels its in-flight calls and ends its sessions, wherever the kill came from (admin API, loop trip). */
import type { Gateway } from './gateway.js';
import type { WorkflowControl } from './types.js';

export function endSessionsOnKill(gateway: Pick<Gateway, 'sessions' | 'closeSession'>, workflows: Pick<WorkflowControl, 'onStateChange'>): void {
  workflows.onStateChange((id, state) => {
    if (state !== 'killed') return;
    for (const cs of [...gateway.sessions.values()]) if (cs.workflowId === id) void gateway.closeSession(cs, 'workflow killed');
  });
}
