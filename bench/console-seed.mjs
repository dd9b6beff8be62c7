// Seeds a data directory with a trail of N steps through the gateway's own audit store (real rows, real hash chain,
// real indexes), for the console benchmark: 20 agents in 4 teams, workflows of 100 steps, one long workflow, 5% refusals,
// and one step in ten a model call (3 models, with tokens and cost) for the models page's spend queries.
import { openAudit } from '../dist/audit/index.js';
import { DEFAULT_REDACT } from '../dist/config/gateway-schema.js';

const REASONS = ['policy_denied', 'rate_limited', 'loop_detected', 'budget_exceeded', 'approval_denied'];
const TOOLS = ['query', 'search', 'fetch', 'write_file', 'delete_rows', 'send_mail', 'summarize'];
const SERVERS = ['github', 'bigquery', 'files', 'mail', 'crm'];
const MODELS = ['gpt-4o-mini', 'gpt-4o', 'claude-sonnet'];

/** Seed `steps` steps into dataDir; returns the id of the long workflow and a value to search for. */
export function seedConsoleTrail(dataDir, { steps = 1_000_000, perWorkflow = 100, longWorkflow = 10_000, onProgress } = {}) {
  const audit = openAudit({ dataDir, audit: { enabled: true, durability: 'batched', flushMs: 1_000_000, redact: DEFAULT_REDACT } });
  const start = Date.now() - 30 * 86_400_000;
  const span = 30 * 86_400_000;
  let written = 0;
  let longId;
  const needle = `needle${Math.random().toString(36).slice(2, 10)}`;
  const caller = (i) => ({ agentId: `agent-${i % 20}`, agent: { id: `agent-${i % 20}`, team: `team-${i % 4}` }, principal: `p-${i % 20}`, user: `user-${i % 7}@example.com`, chain: [`agent-${i % 20}`], via: 'apikey' });
  const oneWorkflow = (w, count) => {
    const c = caller(w);
    const id = audit.workflows.begin({ caller: c, kind: 'mcp' });
    for (let s = 0; s < count && written < steps; s++) {
      const i = written++;
      const stepNo = audit.workflows.nextStep(id);
      const refused = i % 20 === 7;
      const server = SERVERS[i % SERVERS.length];
      const tool = TOOLS[i % TOOLS.length];
      const startedAt = start + Math.floor((i / steps) * span);
      if (!refused && i % 10 === 3) {
        const model = MODELS[i % MODELS.length];
        const tokens = { input: 200 + (i % 800), output: 50 + (i % 300), cachedInput: i % 4 === 0 ? 100 : 0 };
        const info = { model, provider: 'openai', upstreamModel: model, reserve: { tokens: 1000, costUsd: 0.001, inputTokens: tokens.input }, fingerprint: `f${i % 5000}` };
        audit.store.record(
          { kind: 'model/call', caller: c, workflowId: id, stepNo, server: 'openai', target: model, exposedName: model, args: { messages: [{ role: 'user', content: `value ${i % 5000}` }] }, startedAt, model: info },
          { outcome: 'ok', durationMs: 100 + (i % 900), tokens: tokens.input + tokens.output, model: { model, upstreamModel: model, provider: 'openai', tokens, costUsd: (tokens.input + tokens.output * 4) / 1e6, finishReason: 'stop' } },
        );
      } else {
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
            startedAt,
          },
          { outcome: refused ? 'refused' : 'ok', reason: refused ? REASONS[i % REASONS.length] : undefined, durationMs: 1 + (i % 900) },
        );
      }
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
