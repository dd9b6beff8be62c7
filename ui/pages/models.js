// Models: calls, tokens and cost per model, agent or team over a time range, and the same over time (an SVG chart).
import { ErrorNote, html, qs, useApi, useState } from '../lib.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The chart stacks the largest keys in their own colours and the rest as "other". */
const COLOURS = ['#0b5cad', '#b35900', '#116329', '#8250df', '#a40e26', '#1b7c83'];
const OTHER = '#8c959f';

/** Dollars with three significant digits below a cent (model calls cost millionths), never rounded to zero. */
export function usd(n) {
  const v = n ?? 0;
  if (v === 0) return '$0';
  const decimals = v >= 100 ? 2 : v >= 0.01 ? 4 : Math.min(12, 2 - Math.floor(Math.log10(v)));
  return `$${v.toFixed(decimals)}`;
}
const localInput = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
const keyName = (key) => key ?? '(none)';

/** Hours for a range of up to two days, days beyond (the endpoint allows at most 800 buckets). */
function bucketFor(fromMs, toMs) {
  return toMs - fromMs <= 2 * DAY_MS ? 'hour' : 'day';
}

/** Every bucket of the range, empty ones included, each with its figure per key. */
function bucketsOf(report, metric) {
  const size = report.bucket === 'hour' ? HOUR_MS : DAY_MS;
  const from = Date.parse(report.from);
  const to = Date.parse(report.to);
  const byStart = new Map();
  for (const s of report.series ?? []) {
    const at = Date.parse(s.start);
    if (!byStart.has(at)) byStart.set(at, new Map());
    byStart.get(at).set(keyName(s.key), metric === 'cost' ? s.costUsd : s.tokens.total);
  }
  const out = [];
  for (let at = from - (from % size); at < to; at += size) out.push({ start: at, values: byStart.get(at) ?? new Map() });
  return out;
}

function SpendChart({ report, metric }) {
  const buckets = bucketsOf(report, metric);
  // Colours follow the table's order (highest cost first), so the table is the chart's legend too.
  const named = report.groups.slice(0, COLOURS.length).map((g) => keyName(g.key));
  const colour = (k) => COLOURS[named.indexOf(k)] ?? OTHER;
  const totals = buckets.map((b) => [...b.values.values()].reduce((s, v) => s + v, 0));
  const max = Math.max(...totals, 0);
  const fmt = metric === 'cost' ? usd : (n) => `${n} tokens`;
  const when = (ms) => (report.bucket === 'hour' ? new Date(ms).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : new Date(ms).toLocaleDateString());
  const W = 900;
  const H = 220;
  const PAD = { left: 96, right: 60, bottom: 24, top: 8 };
  const plotH = H - PAD.bottom - PAD.top;
  const step = (W - PAD.left - PAD.right) / Math.max(buckets.length, 1);
  const barW = Math.max(1, step * 0.8);
  const y = (v) => (max > 0 ? (v / max) * plotH : 0);
  const nonEmpty = buckets.filter((_, i) => totals[i] > 0);
  const summary = `${metric === 'cost' ? 'Cost' : 'Tokens'} per ${report.bucket} by ${report.by}: ${nonEmpty.length === 0 ? 'nothing in this range' : nonEmpty.map((b) => `${when(b.start)} ${fmt(totals[buckets.indexOf(b)])}`).join('; ')}`;
  const labelEvery = Math.max(1, Math.ceil(buckets.length / 8));
  return html`<figure class="spend-chart">
    <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${summary} preserveAspectRatio="none">
      <title>${summary}</title>
      <line class="axis" x1=${PAD.left} y1=${H - PAD.bottom} x2=${W - PAD.right} y2=${H - PAD.bottom} />
      <text class="tick" x=${PAD.left - 6} y=${PAD.top + 10} text-anchor="end">${fmt(max)}</text>
      <text class="tick" x=${PAD.left - 6} y=${H - PAD.bottom} text-anchor="end">0</text>
      ${buckets.map((b, i) => {
        let base = H - PAD.bottom;
        const x = PAD.left + i * step + (step - barW) / 2;
        const parts = [...b.values.entries()].sort(([a], [c]) => named.indexOf(a) - named.indexOf(c));
        return html`<g>
          ${parts.map(([k, v]) => {
            const h = y(v);
            base -= h;
            return html`<rect x=${x} y=${base} width=${barW} height=${h} fill=${colour(k)}><title>${`${when(b.start)} · ${k}: ${fmt(v)}`}</title></rect>`;
          })}
          ${i % labelEvery === 0 ? html`<text class="tick" x=${x + barW / 2} y=${H - 6} text-anchor="middle">${when(b.start)}</text>` : ''}
        </g>`;
      })}
    </svg>
    <figcaption>
      <ul class="legend">${named.map((k) => html`<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill=${colour(k)} /></svg>${k}</li>`)}
        ${report.groups.length > COLOURS.length ? html`<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill=${OTHER} /></svg>other</li>` : ''}</ul>
      <span class="muted">${metric === 'cost' ? 'Cost' : 'Tokens'} per ${report.bucket} (UTC buckets), ${fmt(totals.reduce((s, v) => s + v, 0))} in all</span>
    </figcaption>
  </figure>`;
}

export function Models() {
  const now = Date.now();
  const [range, setRange] = useState({ by: 'model', from: localInput(now - DAY_MS), to: localInput(now + 60_000), metric: 'cost' });
  const fromMs = new Date(range.from).getTime();
  const toMs = new Date(range.to).getTime();
  const bad = !Number.isFinite(fromMs) || !Number.isFinite(toMs) ? 'Give both times.' : fromMs > toMs ? 'From must not be after To.' : undefined;
  const path = bad ? undefined : `/spend${qs({ by: range.by, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), bucket: bucketFor(fromMs, toMs) })}`;
  const { data, error } = useApi(path);
  const onSubmit = (e) => {
    e.preventDefault();
    setRange({ ...range, ...Object.fromEntries(new FormData(e.target)) });
  };
  const groups = data?.groups ?? [];
  const estimated = (g) => (g.estimatedCalls ? html` <span class="muted">(${g.estimatedCalls} estimated)</span>` : '');
  return html`<section aria-labelledby="h-models">
    <h2 id="h-models">Models</h2>
    <form class="filters" onSubmit=${onSubmit} aria-label="Spend range">
      <label>By<select name="by" value=${range.by}><option value="model">model</option><option value="agent">agent</option><option value="team">team</option></select></label>
      <label>From<input name="from" type="datetime-local" value=${range.from} required /></label>
      <label>To<input name="to" type="datetime-local" value=${range.to} required /></label>
      <label>Chart<select name="metric" value=${range.metric}><option value="cost">cost</option><option value="tokens">tokens</option></select></label>
      <button type="submit">Show</button>
    </form>
    <${ErrorNote} error=${bad ?? error} />
    ${data && !bad ? html`<${SpendChart} report=${data} metric=${range.metric} />` : ''}
    <table aria-label="Spend"><thead><tr><th scope="col">${range.by}</th><th scope="col">Calls</th><th scope="col">Input tokens</th><th scope="col">Output tokens</th><th scope="col">Cached input</th><th scope="col">Tokens</th><th scope="col">Cost</th></tr></thead><tbody>
      ${groups.map((g) => html`<tr><td>${g.key ?? html`<span class="muted">(none)</span>`}</td><td>${g.calls}</td><td>${g.tokens.input}</td><td>${g.tokens.output}</td><td>${g.tokens.cachedInput}</td><td>${g.tokens.total}</td><td>${usd(g.costUsd)}${estimated(g)}</td></tr>`)}
      ${data && groups.length === 0 ? html`<tr><td colspan="7" class="muted">No model calls in this range.</td></tr>` : ''}
      ${data ? html`<tr><th scope="row">Total</th><td>${data.total.calls}</td><td>${data.total.tokens.input}</td><td>${data.total.tokens.output}</td><td>${data.total.tokens.cachedInput}</td><td>${data.total.tokens.total}</td><td>${usd(data.total.costUsd)}${estimated(data.total)}</td></tr>` : ''}
    </tbody></table>
  </section>`;
}
