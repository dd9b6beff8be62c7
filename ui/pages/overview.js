// Overview: upstream health and breakers, live workflows, refusals in the last hour by reason.
import { ErrorNote, fmtTime, html, qs, useApi, useLiveEvents, useThrottled } from '../lib.js';

export function Overview() {
  const servers = useApi('/servers');
  const overview = useApi('/overview');
  const live = useApi(`/workflows${qs({ state: 'active', limit: 10 })}`);
  const refresh = useThrottled(() => (overview.reload(), live.reload()), 1000);
  useLiveEvents(refresh);
  const counts = overview.data?.workflows ?? {};
  return html`<section aria-labelledby="h-overview">
    <h2 id="h-overview">Overview</h2>
    <${ErrorNote} error=${servers.error ?? overview.error ?? live.error} />
    <div class="cards">
      <div class="card"><h3>Upstreams</h3>
        <table><thead><tr><th scope="col">Server</th><th scope="col">Health</th><th scope="col">Breaker</th></tr></thead><tbody>
          ${(servers.data?.servers ?? []).map((s) => html`<tr><td><a href="#/servers">${s.name}</a></td><td class=${s.up ? 'ok' : 'bad'}>${s.up ? 'up' : 'down'}</td><td class=${s.breaker === 'closed' ? '' : 'bad'}>${s.breaker}</td></tr>`)}
        </tbody></table>
      </div>
      <div class="card"><h3>Workflows</h3>
        <ul>${Object.entries(counts).map(([state, n]) => html`<li>${state}: <strong>${n}</strong></li>`)}</ul>
      </div>
      <div class="card"><h3>Refusals in the last hour</h3>
        ${(overview.data?.refusalsLastHour ?? []).length === 0 ? html`<p class="muted">None.</p>` : html`<ul>${overview.data.refusalsLastHour.map((r) => html`<li><code>${r.reason}</code>: <strong>${r.count}</strong></li>`)}</ul>`}
      </div>
    </div>
    <h3>Live workflows</h3>
    <table><thead><tr><th scope="col">Workflow</th><th scope="col">Agent</th><th scope="col">Started</th><th scope="col">Steps</th></tr></thead><tbody>
      ${(live.data?.workflows ?? []).map((w) => html`<tr><td><a href=${`#/workflows/${encodeURIComponent(w.id)}`}>${w.id}</a></td><td>${w.agent}</td><td>${fmtTime(w.startedAt)}</td><td>${w.steps}</td></tr>`)}
    </tbody></table>
  </section>`;
}
