/** The in-memory workflow store, where the gateway's tools and tests have always found it. */
export { MemoryWorkflows } from '../stores/memory/workflows.js';
