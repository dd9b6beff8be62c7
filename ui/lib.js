// Shared pieces of the console: Preact with htm, the admin API client (cookie session + CSRF header), formatting.
import { h, render } from './vendor/preact.mjs';
import { useCallback, useEffect, useMemo, useRef, useState } from './vendor/hooks.mjs';
import htm from './vendor/htm.mjs';

export const html = htm.bind(h);
export { render, useCallback, useEffect, useMemo, useRef, useState };

let csrf = '';

export class SignedOut extends Error {}

async function readBody(r) {
  const type = r.headers.get('content-type') ?? '';
  return type.includes('json') ? r.json() : r.text();
}

export async function currentSession() {
  const r = await fetch('/ui/api/session', { credentials: 'same-origin' });
  if (!r.ok) return null;
  const s = await r.json();
  csrf = s.csrf;
  return s;
}

export async function signIn(token) {
  const r = await fetch('/ui/api/session', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  const body = await readBody(r);
  if (!r.ok) throw new Error(body?.message ?? `sign-in failed (HTTP ${r.status})`);
  csrf = body.csrf;
  return body;
}

export async function signOut() {
  await fetch('/ui/api/session', { method: 'DELETE', credentials: 'same-origin', headers: { 'x-csrf-token': csrf } });
  csrf = '';
}

async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const r = await fetch(`/admin/api${path}`, { method, credentials: 'same-origin', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) {
    window.dispatchEvent(new Event('switchyard:signed-out'));
    throw new SignedOut('Signed out: sign in again.');
  }
  const data = await readBody(r);
  if (!r.ok) throw new Error(data?.message ?? `HTTP ${r.status}`);
  return data;
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body ?? {}),
};

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Load an admin API path; reload() fetches again (keeps the old data until the new arrives). */
export function useApi(path) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  const seq = useRef(0);
  const reload = useCallback(() => {
    if (!path) return;
    const mine = ++seq.current;
    api.get(path).then(
      (data) => mine === seq.current && setState({ data, error: undefined }),
      (error) => mine === seq.current && setState((s) => ({ data: s.data, error })),
    );
  }, [path]);
  useEffect(reload, [reload]);
  return { ...state, reload };
}

/** Run `onEvent` for each event of the admin event stream (finished steps, workflow state changes). */
export function useLiveEvents(onEvent) {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    const source = new EventSource('/admin/api/events');
    const listen = (e) => handler.current(JSON.parse(e.data));
    source.addEventListener('step', listen);
    source.addEventListener('workflow', listen);
    return () => source.close();
  }, []);
}

/** Call fn at most once per `ms`, trailing. */
export function useThrottled(fn, ms) {
  const timer = useRef(undefined);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      latest.current();
    }, ms);
  }, [ms]);
}

export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '');
export const fmtMs = (ms) => (ms === null || ms === undefined ? '' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);

export function Outcome({ outcome, reason }) {
  const cls = outcome === 'ok' ? 'ok' : outcome === 'refused' ? 'bad' : 'warn';
  return html`<span class=${cls}>${outcome}</span>${reason ? html` <code>${reason}</code>` : ''}`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${String(error.message ?? error)}</p>`;
}

/** Characters that would not show as themselves (bidi, zero-width, private use), besides the layout's newlines. */
const INVISIBLE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}]/gu;
const escapeUnits = (c) => c.split('').map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');

/** JSON shown whole: long values scroll, they are never cut, and nothing hides (invisible characters are escaped). */
export function shownJson(value) {
  return (JSON.stringify(value, null, 2) ?? 'null').replace(INVISIBLE, escapeUnits);
}

export function Json({ value, label }) {
  return html`<pre class="args" tabindex="0" aria-label=${label ?? 'JSON'}>${shownJson(value)}</pre>`;
}

export function Bar({ used, max, label }) {
  if (!max) return html`<span class="muted">${used ?? 0} (no limit)</span>`;
  const pct = Math.min(100, Math.round(((used ?? 0) / max) * 100));
  return html`<div class=${`bar${pct >= 100 ? ' full' : ''}`} role="meter" aria-label=${label} aria-valuemin="0" aria-valuemax=${max} aria-valuenow=${used ?? 0}><span style=${{ width: `${pct}%` }}></span></div>
    <span class="muted">${used ?? 0} / ${max}</span>`;
}
