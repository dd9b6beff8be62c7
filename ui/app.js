// The console shell: sign-in, navigation by URL hash, and the pages.
import { currentSession, html, render, signIn, signOut, useEffect, useState, api } from './lib.js';
import { Overview } from './pages/overview.js';
import { Servers } from './pages/servers.js';
import { Agents } from './pages/agents.js';
import { Workflows, WorkflowDetail } from './pages/workflows.js';
import { Audit } from './pages/audit.js';
import { Approvals } from './pages/approvals.js';

const PAGES = [
  ['overview', 'Overview'],
  ['servers', 'Servers'],
  ['agents', 'Agents'],
  ['workflows', 'Workflows'],
  ['audit', 'Audit'],
  ['approvals', 'Approvals'],
];

function useRoute() {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(new FormData(e.target).get('token')));
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>Switchyard console</h1>
    <form onSubmit=${submit}>
      <label>Admin token<input name="token" type="password" autocomplete="current-password" required autofocus /></label>
      <button class="primary" type="submit" disabled=${busy}>Sign in</button>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
    <p class="muted">The token is exchanged for a session cookie; it is not kept in the browser.</p>
  </main>`;
}

function PendingBadge() {
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    const poll = () => api.get('/approvals?state=pending&limit=100').then((r) => live && setN(r.approvals.length), () => {});
    poll();
    const t = setInterval(poll, 3000);
    return () => ((live = false), clearInterval(t));
  }, []);
  return n > 0 ? html`<span class="badge" aria-label=${`${n} pending`}>${n}</span>` : null;
}

function Shell({ session, onSignedOut }) {
  const [page, ...rest] = useRoute();
  useEffect(() => {
    document.title = `${PAGES.find(([k]) => k === page)?.[1] ?? 'Switchyard'} · Switchyard console`;
  }, [page]);
  const out = async () => {
    await signOut();
    onSignedOut();
  };
  let body;
  if (page === 'workflows' && rest[0]) body = html`<${WorkflowDetail} id=${rest[0]} />`;
  else if (page === 'servers') body = html`<${Servers} />`;
  else if (page === 'agents') body = html`<${Agents} />`;
  else if (page === 'workflows') body = html`<${Workflows} />`;
  else if (page === 'audit') body = html`<${Audit} />`;
  else if (page === 'approvals') body = html`<${Approvals} />`;
  else body = html`<${Overview} />`;
  return html`<div>
    <header class="top">
      <h1>Switchyard</h1>
      <nav aria-label="Console pages"><ul>
        ${PAGES.map(([key, label]) => html`<li><a href=${`#/${key}`} aria-current=${page === key ? 'page' : undefined}>${label}${key === 'approvals' ? html`<${PendingBadge} />` : ''}</a></li>`)}
      </ul></nav>
      <span class="spacer"></span>
      <span class="muted">${session.admin}</span>
      <button type="button" onClick=${out}>Sign out</button>
    </header>
    <main id="main">${body}</main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  useEffect(() => {
    currentSession().then(setSession, () => setSession(null));
    const out = () => setSession(null);
    window.addEventListener('switchyard:signed-out', out);
    return () => window.removeEventListener('switchyard:signed-out', out);
  }, []);
  if (session === undefined) return html`<p class="loading">Loading…</p>`;
  if (session === null) return html`<${SignIn} onSignedIn=${setSession} />`;
  return html`<${Shell} session=${session} onSignedOut=${() => setSession(null)} />`;
}

render(html`<${App} />`, document.getElementById('app'));
