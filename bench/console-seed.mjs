// Seeds a data directory with a trail of N steps through the gateway's own audit store (real rows, real hash chain,
// real indexes), for the console benchmark: 20 agents, workflows of 100 steps, one long workflow, 5% refusals.
import { openAudit } from '../dist/audit/index.js';
import { DEFAULT_REDACT } from '../dist/config/gateway-schema.js';

const REASONS = ['policy_denied', 'rate_limited', 'loop_detected', 'budget_exceeded', 'approval_denied'];
const TOOLS = ['query', 'search', 'fetch', 'write_file', 'delete_rows', 'send_mail', 'summarize'];
const SERVERS = ['github', 'bigquery', 'files', 'mail', 'crm'];

/** Seed `steps` steps into dataDir; returns the id of the long workflow and a value to search for. */
export function seedConsoleTrail(dataDir, { steps = 1_000_000, perWorkflow = 100, longWorkflow = 10_000, onProgress } = {}) {
  const audit = openAudit({ dataDir, audit: { enabled: true, durability: 'batched', flushMs: 1_000_000, redact: DEFAULT_REDACT } });
  const start = Date.now() - 30 * 86_400_000;
  const span = 30 * 86_400_000;
  let written = 0;
  let longId;
  const needle = `needle${Math.random().toString(36).slice(2, 10)}`;
  const caller = (i) => ({ agentId: `agent-${i % 20}`, principal: `p-${i % 20}`, user: `user-${i % 7}@example.com`, chain: [`agent-${i % 20}`], via: 'apikey' });
  const oneWorkflow = (w, count) => {
    const c = caller(w);
    const id = audit.workflows.begin({ caller: c, kind: 'mcp' });
    for (let s = 0; s < count && written < steps; s++) {
      const i = written++;
      const stepNo = audit.workflows.nextStep(id);
      const refused = i % 20 === 7;
      const server = SERVERS[i % SERVERS.length];
      const tool = TOOLS[i % TOOLS.length];
      audit.store.record(
        {
          kind: 'tools/call',
          caller: c,
          workflowId: id,
          stepNo,
          parentStep: s > 0 && s % 10 !== 0 ? stepNo - 1 : undefined,
          server,
          target: tool,
          exposedName: `${server}__${tool}`,
          args: { q: i === Math.floor(steps / 2) ? `find ${needle} here` : `value ${i % 5000} of ${tool}`, n: i, page: s },
          startedAt: start + Math.floor((i / steps) * span),
        },
        { outcome: refused ? 'refused' : 'ok', reason: refused ? REASONS[i % REASONS.length] : undefined, durationMs: 1 + (i % 900) },
      );
      if (written % 5000 === 0) {
        audit.store.flush();
        onProgress?.(written);
      }
    }
    audit.workflows.setState(id, 'done', 'seeded');
    return id;
  };
  longId = oneWorkflow(0, longWorkflow);
  for (let w = 1; written < steps; w++) oneWorkflow(w, perWorkflow);
  audit.store.flush();
  const unwritten = audit.close();
  if (unwritten > 0) throw new Error(`${unwritten} seeded steps were not written`);
  return { longWorkflow: longId, needle };
}
