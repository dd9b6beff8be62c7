/**
 * What the rooms need of workflows beyond control: the console's views (list, tree, one summary, counts) and the
 * model route's lookups. The SQLite registry answers all of it synchronously; on PostgreSQL control comes from the
 * workflow store and the views from the shared trail, so views may answer with a promise.
 */
import type { WorkflowLookup } from '../gateway/model-steps.js';
import type { WorkflowState } from '../gateway/types.js';
import type { Awaitable } from './types.js';
import type { WorkflowAdmin } from './workflow-views.js';
import type { WorkflowStore } from './workflows.js';

export interface WorkflowRegistryView extends WorkflowStore, WorkflowLookup, WorkflowAdmin {
  setState: WorkflowStore['setState'];
  countByState(): Awaitable<Record<WorkflowState, number>>;
}
