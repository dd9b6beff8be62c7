/** What every A2A path of one gateway shares: the owners of tasks and contexts, and the egress rules. */
import { A2aEgress } from './a2a-egress.js';
import { MemoryTaskOwners, type TaskOwnerStore } from './a2a-owners.js';

export interface A2aContext {
  owners: TaskOwnerStore;
  egress: A2aEgress;
}

/** Owners in memory: for tests and gateways built without a database. */
export function memoryA2aContext(): A2aContext {
  return { owners: new MemoryTaskOwners(), egress: new A2aEgress() };
}
