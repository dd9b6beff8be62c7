/**
 * Checking a stored chain one row at a time, whatever store holds it: each link, each record's own hash (keyed from
 * head.keyedFrom on), then the end of the chain and the record count against the head, so deleting the newest records
 * is detected too. The stores feed rows in id order from one snapshot.
 */
import { GENESIS_HASH, rowHash, type AuditRow, type ChainAnchor, type VerifyResult } from './chain.js';
import { checkHead, type AuditHead } from './head.js';

export class ChainWalk {
  private expectedPrev: string;
  private checked = 0;
  private last: { id: number; hash: string } | undefined;
  private broken: VerifyResult | undefined;
  private readonly keyedFrom: number | null;

  constructor(
    private readonly head: AuditHead | undefined,
    private readonly anchor: ChainAnchor | undefined,
    private readonly key: Buffer | undefined,
  ) {
    this.expectedPrev = anchor?.lastHash ?? GENESIS_HASH;
    this.keyedFrom = head?.keyedFrom ?? null;
    const headProblem = checkHead(head, key);
    if (headProblem) this.broken = { ok: false, records: 0, message: headProblem };
  }

  /** Whether the walk already failed (stop reading rows then). */
  get done(): boolean {
    return this.broken !== undefined;
  }

  /** Check the next row in id order. */
  add(row: AuditRow): void {
    if (this.broken) return;
    const where = { id: row.id, workflowId: row.workflow_id, step: row.step };
    if (row.prev_hash !== this.expectedPrev) {
      const before = this.checked === 0 ? (this.anchor ? `the pruning anchor (record ${this.anchor.lastId})` : 'the start of the chain') : 'the previous record';
      this.broken = {
        ok: false,
        records: this.checked,
        firstBroken: where,
        message: `its prev_hash does not match ${before}: a record before it was deleted, inserted or rewritten`,
      };
      return;
    }
    const actual = rowHash(row.prev_hash, row, this.keyedFrom !== null && row.id >= this.keyedFrom ? this.key : undefined);
    if (actual !== row.hash) {
      this.broken = { ok: false, records: this.checked, firstBroken: where, message: 'its stored fields do not match its hash: the record was altered after it was written' };
      return;
    }
    this.expectedPrev = row.hash;
    this.last = { id: row.id, hash: row.hash };
    this.checked++;
  }

  /** The verdict once every row was added. */
  result(): VerifyResult {
    if (this.broken) return this.broken;
    if (this.head) {
      const endProblem = checkEnd(this.head, this.last, this.checked, this.anchor);
      if (endProblem) return { ok: false, records: this.checked, message: endProblem };
    }
    return { ok: true, records: this.checked, ...(this.anchor ? { anchor: this.anchor } : {}), ...(this.keyedFrom !== null ? { keyed: true as const } : {}) };
  }
}

function checkEnd(head: AuditHead, last: { id: number; hash: string } | undefined, records: number, anchor: ChainAnchor | undefined): string | undefined {
  const endId = last?.id ?? 0;
  if (head.records > 0 && endId < head.lastId) {
    const from = last ? last.id + 1 : (anchor?.lastId ?? 0) + 1;
    const missing = from === head.lastId ? `record ${from} was deleted` : `records ${from} to ${head.lastId} were deleted`;
    const where = last ? `ends at record ${endId}` : 'is empty';
    return `the trail ${where} but the head says it ends at record ${head.lastId}: ${missing}`;
  }
  if (last && (last.id !== head.lastId || last.hash !== head.lastHash)) {
    return `the last record (${last.id}) is not the one the head names (${head.lastId}): records were appended or rewritten behind the writer's back`;
  }
  if (records !== head.records) {
    return `the head counts ${head.records} records but ${records} are present: ${Math.abs(head.records - records)} records were ${records < head.records ? 'deleted' : 'added'}`;
  }
  return undefined;
}
