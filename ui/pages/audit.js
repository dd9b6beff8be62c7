// Audit: filters, search in arguments, keyset paging, export, and the hash chain's verification status.
import { ErrorNote, fmtMs, fmtTime, html, Json, api, qs, useApi, useState, Outcome } from '../lib.js';

const FIELDS = ['agent', 'user', 'server', 'tool', 'reason'];

function iso(local) {
  return local ? new Date(local).toISOString() : '';
}

function Verify() {
  const [state, setState] = useState({});
  const run = () => {
    setState({ running: true });
    api.get('/audit/verify').then((data) => setState({ data }), (error) => setState({ error }));
  };
  return html`<div class="card">
    <h3>Chain verification</h3>
    <button type="button" onClick=${run} disabled=${state.running}>Verify the chain</button>
    ${state.running ? html`<p class="muted" role="status">Verifying…</p>` : ''}
    ${state.data ? html`<p role="status" class=${state.data.ok ? 'ok' : 'bad'}>${state.data.ok ? 'Chain intact' : 'Chain broken'}</p><${Json} value=${state.data} label="verification result" />` : ''}
    <${ErrorNote} error=${state.error} />
  </div>`;
}

export function Audit() {
  const [filter, setFilter] = useState({});
  const [cursors, setCursors] = useState([]);
  const query = { ...filter, limit: 50, cursor: cursors[cursors.length - 1] };
  const { data, error } = useApi(`/audit${qs(query)}`);
  const onSubmit = (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target));
    setCursors([]);
    setFilter({ ...f, since: iso(f.since), until: iso(f.until) });
  };
  const exportHref = `/admin/api/audit/export${qs({ ...filter })}`;
  return html`<section aria-labelledby="h-audit">
    <h2 id="h-audit">Audit</h2>
    <form class="filters" onSubmit=${onSubmit} aria-label="Filter the audit trail">
      ${FIELDS.map((k) => html`<label>${k[0].toUpperCase() + k.slice(1)}<input name=${k} /></label>`)}
      <label>Outcome<select name="outcome"><option value="">any</option><option>ok</option><option>error</option><option>refused</option></select></label>
      <label>Since<input name="since" type="datetime-local" /></label>
      <label>Until<input name="until" type="datetime-local" /></label>
      <label>Search in arguments<input name="q" type="search" /></label>
      <button type="submit">Search</button>
      <a class="button" href=${exportHref} download="audit.ndjson">Export (NDJSON)</a>
    </form>
    <${ErrorNote} error=${error} />
    <table aria-label="Audit records"><thead><tr><th scope="col">Time</th><th scope="col">Workflow / step</th><th scope="col">Agent</th><th scope="col">Tool</th><th scope="col">Outcome</th><th scope="col">Took</th><th scope="col">Arguments</th></tr></thead><tbody>
      ${(data?.records ?? []).map((r) => html`<tr data-record=${r.id}><td>${fmtTime(r.time)}</td><td><a href=${`#/workflows/${encodeURIComponent(r.workflowId)}`}>${r.workflowId}</a> #${r.step}</td><td>${r.agent}${r.user ? html`<br /><span class="muted">${r.user}</span>` : ''}</td>
        <td>${r.server ? `${r.server}__` : ''}${r.tool} <span class="muted">${r.kind}</span></td><td><${Outcome} outcome=${r.outcome} reason=${r.reason} /></td><td>${fmtMs(r.durationMs)}</td><td><${Json} value=${r.args} label=${`arguments of record ${r.id}`} /></td></tr>`)}
    </tbody></table>
    ${data && data.records.length === 0 ? html`<p class="muted">No records match.</p>` : ''}
    <div class="actions">
      <button type="button" disabled=${cursors.length === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>Newer</button>
      <button type="button" disabled=${!data?.nextCursor} onClick=${() => setCursors([...cursors, data.nextCursor])}>Older</button>
    </div>
    <${Verify} />
  </section>`;
}
