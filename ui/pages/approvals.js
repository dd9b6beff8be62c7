// Approvals: pending calls with their arguments in full, approve or deny with a reason; the decided ones below.
import { ErrorNote, fmtTime, html, Json, api, useApi, useEffect, useState } from '../lib.js';

function Pending({ a, onDone }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState(undefined);
  const decide = async (decision) => {
    setError(undefined);
    try {
      await api.post(`/approvals/${encodeURIComponent(a.id)}/${decision}`, { reason: reason || undefined, argsDigest: a.argsDigest });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  const rid = `reason-${a.id}`;
  return html`<article class="approval" aria-label=${`approval for ${a.tool}`} data-approval=${a.id}>
    <h3>${a.tool} <span class="muted">by ${a.agent}${a.user ? ` for ${a.user}` : ''}</span></h3>
    <p>Workflow <a href=${`#/workflows/${encodeURIComponent(a.workflowId)}`}>${a.workflowId}</a> · asked ${fmtTime(a.createdAt)} · expires ${fmtTime(a.expiresAt)}</p>
    <p>Arguments (in full, <code>${a.argsDigest}</code>):</p>
    <${Json} value=${a.args} label=${`arguments of ${a.tool}`} />
    <div class="field"><label for=${rid}>Reason</label><input id=${rid} value=${reason} onInput=${(e) => setReason(e.target.value)} /></div>
    <div class="actions">
      <button type="button" class="primary" onClick=${() => decide('approve')}>Approve</button>
      <button type="button" class="danger" onClick=${() => decide('deny')}>Deny</button>
    </div>
    <${ErrorNote} error=${error} />
  </article>`;
}

export function Approvals() {
  const pending = useApi('/approvals?state=pending');
  const decided = useApi('/approvals?state=decided&limit=50');
  useEffect(() => {
    const t = setInterval(() => (pending.reload(), decided.reload()), 2000);
    return () => clearInterval(t);
  }, [pending.reload, decided.reload]);
  const done = () => (pending.reload(), decided.reload());
  const list = pending.data?.approvals ?? [];
  return html`<section aria-labelledby="h-approvals">
    <h2 id="h-approvals">Approvals</h2>
    <${ErrorNote} error=${pending.error} />
    <h3>Pending</h3>
    ${list.length === 0 ? html`<p class="muted">Nothing waits for a decision.</p>` : list.map((a) => html`<${Pending} key=${a.id} a=${a} onDone=${done} />`)}
    <h3>Decided</h3>
    <table aria-label="Decided approvals"><thead><tr><th scope="col">Tool</th><th scope="col">Agent</th><th scope="col">Decision</th><th scope="col">By</th><th scope="col">When</th><th scope="col">Reason</th></tr></thead><tbody>
      ${(decided.data?.approvals ?? []).map((a) => html`<tr><td>${a.tool}</td><td>${a.agent}</td><td class=${a.state === 'approved' ? 'ok' : 'bad'}>${a.state}</td><td>${a.decidedBy ?? ''}</td><td>${fmtTime(a.decidedAt)}</td><td>${a.reason ?? ''}</td></tr>`)}
    </tbody></table>
  </section>`;
}
