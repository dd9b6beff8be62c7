// Workflows: a live list with filters, and one workflow as a tree of steps with a waterfall, search, pause/resume/kill.
import { ErrorNote, fmtMs, fmtTime, html, Json, api, qs, useApi, useLiveEvents, useMemo, useState, useThrottled, Outcome } from '../lib.js';

const STATES = ['', 'active', 'paused', 'tripped', 'killed', 'done'];

export function Workflows() {
  const [filter, setFilter] = useState({ agent: '', state: '', since: '' });
  const [pages, setPages] = useState([]);
  const since = filter.since ? new Date(filter.since).toISOString() : '';
  const first = useApi(`/workflows${qs({ agent: filter.agent, state: filter.state, since, limit: 50 })}`);
  const refresh = useThrottled(() => first.reload(), 500);
  useLiveEvents(refresh);
  const more = async () => {
    const last = pages.length ? pages[pages.length - 1] : first.data;
    if (!last?.nextCursor) return;
    const next = await api.get(`/workflows${qs({ agent: filter.agent, state: filter.state, since, limit: 50, cursor: last.nextCursor })}`);
    setPages([...pages, next]);
  };
  const onSubmit = (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    setPages([]);
    setFilter({ agent: f.get('agent'), state: f.get('state'), since: f.get('since') });
  };
  const rows = [...(first.data?.workflows ?? []), ...pages.flatMap((p) => p.workflows)];
  const lastPage = pages.length ? pages[pages.length - 1] : first.data;
  return html`<section aria-labelledby="h-workflows">
    <h2 id="h-workflows">Workflows</h2>
    <form class="filters" onSubmit=${onSubmit} aria-label="Filter workflows">
      <label>Agent<input name="agent" value=${filter.agent} /></label>
      <label>State<select name="state" value=${filter.state}>${STATES.map((s) => html`<option value=${s}>${s || 'any'}</option>`)}</select></label>
      <label>Started since<input name="since" type="datetime-local" value=${filter.since} /></label>
      <button type="submit">Filter</button>
    </form>
    <${ErrorNote} error=${first.error} />
    <table aria-label="Workflows"><thead><tr><th scope="col">Workflow</th><th scope="col">Agent</th><th scope="col">User</th><th scope="col">State</th><th scope="col">Started</th><th scope="col">Steps</th></tr></thead><tbody>
      ${rows.map((w) => html`<tr data-workflow=${w.id}><td><a href=${`#/workflows/${encodeURIComponent(w.id)}`}>${w.id}</a></td><td>${w.agent}</td><td>${w.user ?? ''}</td><td>${w.state}</td><td>${fmtTime(w.startedAt)}</td><td>${w.steps}</td></tr>`)}
    </tbody></table>
    ${lastPage?.nextCursor ? html`<button type="button" onClick=${more}>Load more</button>` : ''}
  </section>`;
}

function matches(step, args, needle) {
  if (!needle) return true;
  const hay = `${step.step} ${step.agent} ${step.kind} ${step.server ?? ''} ${step.tool} ${step.outcome} ${step.reason ?? ''} ${args === undefined ? '' : JSON.stringify(args)}`.toLowerCase();
  return hay.includes(needle.toLowerCase());
}

function StepNode({ node, t0, span, argsOf, needle, depth }) {
  const args = argsOf.get(node.step);
  const shown = matches(node, args, needle);
  const left = span > 0 ? ((Date.parse(node.startedAt) - t0) / span) * 100 : 0;
  const width = span > 0 ? Math.max(0.3, (node.durationMs / span) * 100) : 100;
  return html`<li>
    ${shown ? html`<div class="step" data-step=${node.step}>
      <span>#${node.step}</span>
      <span><strong>${node.server ? `${node.server}__` : ''}${node.tool}</strong> <span class="muted">${node.kind} · ${node.agent}</span></span>
      <span><${Outcome} outcome=${node.outcome} reason=${node.reason} /></span>
      <span class=${`waterfall ${node.outcome}`} title=${`${fmtTime(node.startedAt)} · ${fmtMs(node.durationMs)}`} aria-label=${`step ${node.step} took ${fmtMs(node.durationMs)}`}><span style=${{ left: `${left}%`, width: `${Math.min(width, 100 - left)}%` }}></span></span>
    </div>
    <details><summary>Step ${node.step}: ${fmtMs(node.durationMs)}${node.tokens ? ` · ${node.tokens} tokens` : ''} · arguments</summary><${Json} value=${args ?? null} label=${`arguments of step ${node.step}`} /></details>` : ''}
    ${node.children?.length ? html`<ul>${node.children.map((c) => html`<${StepNode} node=${c} t0=${t0} span=${span} argsOf=${argsOf} needle=${needle} depth=${depth + 1} />`)}</ul>` : ''}
  </li>`;
}

/** Steps nested under their parent step (parents come first: they have lower step numbers). */
function nest(steps) {
  const byStep = new Map(steps.map((s) => [s.step, { ...s, children: [] }]));
  const roots = [];
  for (const node of byStep.values()) {
    const parent = node.parentStep !== null && node.parentStep < node.step ? byStep.get(node.parentStep) : undefined;
    (parent ? parent.children : roots).push(node);
  }
  return roots;
}

export function WorkflowDetail({ id }) {
  const tree = useApi(`/workflows/${encodeURIComponent(id)}`);
  const [later, setLater] = useState([]);
  const audit = useApi(`/audit${qs({ workflowId: id, limit: 1000 })}`);
  const [needle, setNeedle] = useState('');
  const [note, setNote] = useState('');
  const refresh = useThrottled(() => (tree.reload(), audit.reload()), 500);
  useLiveEvents((e) => e.workflowId === id && refresh());
  const argsOf = useMemo(() => new Map((audit.data?.records ?? []).map((r) => [r.step, r.args])), [audit.data]);
  const act = async (action) => {
    try {
      const w = await api.post(`/workflows/${encodeURIComponent(id)}/${action}`, { why: `console ${action}` });
      setNote(`Workflow is ${w.state}.`);
    } catch (err) {
      setNote(err.message);
    }
    tree.reload();
  };
  const w = tree.data;
  const lastPage = later.length ? later[later.length - 1] : w;
  const moreSteps = async () => {
    const next = await api.get(`/workflows/${encodeURIComponent(id)}${qs({ afterStep: lastPage.nextAfterStep })}`);
    setLater([...later, next]);
  };
  const steps = useMemo(() => [...(w?.steps ?? []), ...later.flatMap((p) => p.steps)], [w, later]);
  const roots = useMemo(() => nest(steps), [steps]);
  const t0 = steps.reduce((m, s) => Math.min(m, Date.parse(s.startedAt)), Infinity);
  const end = steps.reduce((m, s) => Math.max(m, Date.parse(s.startedAt) + s.durationMs), -Infinity);
  return html`<section aria-labelledby="h-workflow">
    <p><a href="#/workflows">← Workflows</a></p>
    <h2 id="h-workflow">Workflow <code>${id}</code></h2>
    <${ErrorNote} error=${tree.error} />
    ${w ? html`<p>Agent <strong>${w.agent}</strong>${w.user ? ` for ${w.user}` : ''} · state <strong data-testid="workflow-state">${w.state}</strong> · started ${fmtTime(w.startedAt)} · ${w.stepCount} step(s)${w.why ? ` · ${w.why}` : ''}</p>
      <div class="actions">
        <button type="button" onClick=${() => act('pause')} disabled=${w.state !== 'active'}>Pause</button>
        <button type="button" onClick=${() => act('resume')} disabled=${w.state === 'active' || w.state === 'killed' || w.state === 'done'}>Resume</button>
        <button type="button" class="danger" onClick=${() => act('kill')} disabled=${w.state === 'killed'}>Kill</button>
      </div>
      <p class="status" role="status">${note}</p>
      <label class="field">Search this trace <input type="search" value=${needle} onInput=${(e) => setNeedle(e.target.value)} /></label>
      <div class="tree" aria-label="Steps"><ul>${roots.map((n) => html`<${StepNode} node=${n} t0=${t0} span=${end - t0} argsOf=${argsOf} needle=${needle} depth=${0} />`)}</ul></div>
      ${lastPage?.nextAfterStep !== null && lastPage?.nextAfterStep !== undefined ? html`<button type="button" onClick=${moreSteps}>Load more steps (${steps.length} of ${w.stepCount} shown)</button>` : ''}` : html`<p class="muted">Loading…</p>`}
  </section>`;
}
