// Servers: each manifest (secrets masked by the API), health, breaker, last error, and its tools with their schemas.
import { ErrorNote, fmtTime, html, Json, api, useApi, useState } from '../lib.js';

function Tools({ name }) {
  const [state, setState] = useState({});
  const load = () => {
    setState({ loading: true });
    api.get(`/servers/${encodeURIComponent(name)}/tools`).then((data) => setState({ data }), (error) => setState({ error }));
  };
  if (!state.data && !state.loading && !state.error) return html`<button type="button" onClick=${load}>Show tools of ${name}</button>`;
  if (state.loading) return html`<p class="muted">Listing tools…</p>`;
  if (state.error) return html`<${ErrorNote} error=${state.error} />`;
  return html`<table><thead><tr><th scope="col">Tool</th><th scope="col">Exposed</th><th scope="col">Description and input schema</th></tr></thead><tbody>
    ${state.data.tools.map((t) => html`<tr><td><code>${t.name}</code></td><td>${t.exposed ? 'yes' : html`<span class="muted">filtered out</span>`}</td>
      <td>${t.description ?? ''}<details><summary>Schema</summary><${Json} value=${t.inputSchema} label=${`input schema of ${t.name}`} /></details></td></tr>`)}
  </tbody></table>`;
}

export function Servers() {
  const { data, error } = useApi('/servers');
  return html`<section aria-labelledby="h-servers">
    <h2 id="h-servers">Servers</h2>
    <${ErrorNote} error=${error} />
    ${(data?.servers ?? []).map((s) => html`<article class="card" aria-label=${`server ${s.name}`}>
      <h3>${s.name} <span class=${s.up ? 'ok' : 'bad'}>${s.up ? 'up' : 'down'}</span></h3>
      <p>${s.transport} · breaker <strong class=${s.breaker === 'closed' ? '' : 'bad'}>${s.breaker}</strong>${s.required ? ' · required' : ''} · ${s.restarts?.ended ?? 0} unexpected end(s), ${s.restarts?.failedStarts ?? 0} failed start(s)${s.checkedAt ? ` · checked ${fmtTime(s.checkedAt)}` : ''}</p>
      ${s.lastError ? html`<p class="error">Last error: ${s.lastError}</p>` : ''}
      <details><summary>Manifest (secrets masked)</summary><${Json} value=${s} label=${`manifest of ${s.name}`} /></details>
      <${Tools} name=${s.name} />
    </article>`)}
  </section>`;
}
