/** A2A task owners in process memory, bounded: the oldest entries are forgotten first. */
import type { OwnedKind, TaskOwner, TaskOwnerStore } from '../task-owners.js';

const MAX_REMEMBERED = 20_000;

export class MemoryTaskOwners implements TaskOwnerStore {
  private readonly owners = new Map<string, TaskOwner>();

  constructor(private readonly max = MAX_REMEMBERED) {}

  claim(server: string, kind: OwnedKind, id: string, owner: TaskOwner): void {
    const k = `${server}\n${kind}\n${id}`;
    if (this.owners.has(k)) return;
    if (this.owners.size >= this.max) this.owners.delete(this.owners.keys().next().value as string);
    this.owners.set(k, { ...owner });
  }

  ownerOf(server: string, kind: OwnedKind, id: string): TaskOwner | undefined {
    const o = this.owners.get(`${server}\n${kind}\n${id}`);
    return o && { ...o };
  }
}
