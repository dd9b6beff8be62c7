// Agents: identity, owner, team, policy, limits with use against budget, live delegated tokens with revoke, refusals.
import { ErrorNote, fmtTime, html, Json, api, qs, useApi, useState, Bar, Outcome } from '../lib.js';

const WINDOWS = ['perMinute', 'perHour', 'perDay'];

function Usage({ agent }) {
  const { data } = useApi(`/agents/${encodeURIComponent(agent.id)}/usage`);
  const rows = [];
  for (const w of WINDOWS) {
    for (const [metric, max] of Object.entries(agent.limits?.[w] ?? {})) rows.push({ w, metric, max, used: data?.windows?.[w]?.[metric] ?? 0 });
  }
  if (rows.length === 0) return html`<p class="muted">No rate or budget limits.</p>`;
  return html`<table><thead><tr><th scope="col">Window</th><th scope="col">Limit</th><th scope="col">Used</th></tr></thead><tbody>
    ${rows.map((r) => html`<tr><td>${r.w}</td><td>${r.metric}</td><td><${Bar} used=${r.used} max=${r.max} label=${`${agent.id} ${r.w} ${r.metric}`} /></td></tr>`)}
  </tbody></table>`;
}

function Tokens({ agent }) {
  const tokens = useApi(`/tokens${qs({ agent: agent.id })}`);
  const [note, setNote] = useState('');
  const revoke = async (jti) => {
    try {
      const r = await api.post(`/tokens/${encodeURIComponent(jti)}/revoke`);
      setNote(`Revoked ${r.revoked.length} token(s): ${r.revoked.join(', ')}`);
    } catch (err) {
      setNote(err.message);
    }
    tokens.reload();
  };
  const list = tokens.data?.tokens ?? [];
  return html`<div>
    <p class="status" role="status">${note}</p>
    ${list.length === 0 ? html`<p class="muted">No live delegated tokens.</p>` : html`<table><thead><tr><th scope="col">Token (jti)</th><th scope="col">Agent</th><th scope="col">From</th><th scope="col">Workflow</th><th scope="col">Expires</th><th scope="col"></th></tr></thead><tbody>
      ${list.map((t) => html`<tr><td><code>${t.jti}</code></td><td>${t.agent}</td><td>${t.parentAgent}</td><td><a href=${`#/workflows/${encodeURIComponent(t.workflowId)}`}>${t.workflowId}</a></td><td>${fmtTime(t.expiresAt)}</td>
        <td><button type="button" class="danger" onClick=${() => revoke(t.jti)} aria-label=${`Revoke token ${t.jti}`}>Revoke</button></td></tr>`)}
    </tbody></table>`}
  </div>`;
}

function Refusals({ agent }) {
  const { data } = useApi(`/audit${qs({ agent: agent.id, outcome: 'refused', limit: 10 })}`);
  const records = data?.records ?? [];
  if (records.length === 0) return html`<p class="muted">No refusals.</p>`;
  return html`<table><thead><tr><th scope="col">Time</th><th scope="col">Tool</th><th scope="col">Kind</th><th scope="col">Reason</th></tr></thead><tbody>
    ${records.map((r) => html`<tr><td>${fmtTime(r.time)}</td><td>${r.server ? `${r.server}__` : ''}${r.tool}</td><td>${r.kind}</td><td><${Outcome} outcome=${r.outcome} reason=${r.reason} /></td></tr>`)}
  </tbody></table>`;
}

export function Agents() {
  const { data, error } = useApi('/agents');
  return html`<section aria-labelledby="h-agents">
    <h2 id="h-agents">Agents</h2>
    <${ErrorNote} error=${error} />
    ${(data?.agents ?? []).map((a) => html`<article class="card" aria-label=${`agent ${a.id}`}>
      <h3>${a.id}</h3>
      <p>${a.owner ? `owner ${a.owner}` : 'no owner'} · ${a.team ? `team ${a.team}` : 'no team'} · ${a.credentials.apiKeys} API key(s)${a.credentials.jwt ? ' · JWT' : ''}</p>
      <details><summary>Policy</summary><${Json} value=${{ tools: a.tools, prompts: a.prompts, resources: a.resources, a2a: a.a2a, models: a.models, delegation: a.delegation }} label=${`policy of ${a.id}`} /></details>
      <h4>Limits</h4><${Usage} agent=${a} />
      <h4>Delegated tokens</h4><${Tokens} agent=${a} />
      <h4>Recent refusals</h4><${Refusals} agent=${a} />
    </article>`)}
  </section>`;
}
