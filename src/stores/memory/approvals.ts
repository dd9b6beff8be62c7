/** Approvals in memory: for tests and single-process use without a data directory. */
import type { ApprovalDecision, ApprovalListFilter, ApprovalOutcome, ApprovalRecord, ApprovalsStore } from '../approvals.js';
import { listLimit } from '../approvals.js';

export class MemoryApprovals implements ApprovalsStore {
  private readonly records = new Map<string, ApprovalRecord>();
  private readonly order: string[] = [];

  async create(record: ApprovalRecord): Promise<void> {
    if (this.records.has(record.id)) throw new Error(`approval ${record.id} exists already`);
    this.records.set(record.id, structuredClone(record));
    this.order.push(record.id);
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const r = this.records.get(id);
    return r ? structuredClone(r) : undefined;
  }

  async list(filter: ApprovalListFilter = {}): Promise<ApprovalRecord[]> {
    const limit = listLimit(filter.limit);
    let end = this.order.length;
    if (filter.before !== undefined) {
      const at = this.order.indexOf(filter.before);
      end = at < 0 ? 0 : at;
    }
    const out: ApprovalRecord[] = [];
    for (let i = end - 1; i >= 0 && out.length < limit; i--) {
      const r = this.records.get(this.order[i]!)!;
      if (filter.state === 'decided' ? r.state === 'pending' : filter.state !== undefined && r.state !== filter.state) continue;
      out.push(structuredClone(r));
    }
    return out;
  }

  async settle(id: string, outcome: ApprovalOutcome, d: ApprovalDecision): Promise<ApprovalRecord | undefined> {
    const r = this.records.get(id);
    if (!r || r.state !== 'pending') return undefined;
    Object.assign(r, { state: outcome, decidedBy: d.by, decidedAt: d.at, ...(d.reason !== undefined ? { reason: d.reason } : {}) });
    return structuredClone(r);
  }

  close(): void {}
}
