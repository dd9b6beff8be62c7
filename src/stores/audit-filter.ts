/** The part of an audit filter both stores turn into SQL alike: its exact-match fields. */
import { AUDIT_OUTCOMES, InvalidQueryError, type AuditFilter } from '../audit/query.js';

/** The filter's exact-match fields as [column, value] pairs, in clause order; a bad outcome throws InvalidQueryError. */
export function auditEqualities(filter: AuditFilter): Array<[column: string, value: string]> {
  const pairs: Array<[string, string]> = [];
  const eq = (column: string, value: string | undefined): void => {
    if (value !== undefined) pairs.push([column, value]);
  };
  eq('agent', filter.agent);
  eq('"user"', filter.user);
  eq('server', filter.server);
  eq('workflow_id', filter.workflowId);
  eq('reason', filter.reason);
  if (filter.outcome !== undefined) {
    if (!AUDIT_OUTCOMES.includes(filter.outcome)) {
      throw new InvalidQueryError(`outcome must be one of ${AUDIT_OUTCOMES.join(', ')}, got "${filter.outcome}"`);
    }
    eq('outcome', filter.outcome);
  }
  return pairs;
}
