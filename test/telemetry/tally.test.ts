import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CounterTally, TallyHistogram } from '../../src/telemetry/tally.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const VALUES: Array<[string, number]> = [
  ['github', 0.0004],
  ['github', 0.001],
  ['github', 0.05],
  ['jira', 3],
  ['github', 0.5],
  ['jira', 0.02],
  ['we"ird\\name', 0.002],
];

describe('TallyHistogram', () => {
  it('renders exactly what a prom-client Histogram renders for the same observations, as text and as JSON', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const tally = new TallyHistogram('t_seconds', 'Help text.', 'server', BUCKETS, ours);
    const reference = new Histogram({ name: 't_seconds', help: 'Help text.', labelNames: ['server'], buckets: BUCKETS, registers: [theirs] });
    for (const [server, v] of VALUES) {
      tally.observe(server, v);
      reference.labels(server).observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    expect(await ours.metrics()).toContain('t_seconds_bucket{le="0.01",server="github"} 2');
    expect(await ours.metrics()).toContain('t_seconds_bucket{le="+Inf",server="jira"} 2');
  });

  it('ignores values that are not finite, forgets a removed series and starts over on reset', async () => {
    const registry = new Registry();
    const tally = new TallyHistogram('t_seconds', 'Help.', 'server', BUCKETS, registry);
    tally.observe('a', Number.NaN);
    tally.observe('a', Number.POSITIVE_INFINITY);
    expect(await registry.metrics()).not.toContain('server="a"');
    tally.observe('a', 0.5);
    tally.observe('b', 0.5);
    tally.remove('a');
    const text = await registry.metrics();
    expect(text).not.toContain('server="a"');
    expect(text).toContain('t_seconds_count{server="b"} 1');
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('server="b"');
  });
});

describe('CounterTally', () => {
  it('folds what it counted into the counter at each scrape, once per label set', async () => {
    const registry = new Registry();
    const tally: CounterTally<'server' | 'outcome'> = new CounterTally(
      new Counter({ name: 'c_total', help: 'Help.', labelNames: ['server', 'outcome'], registers: [registry], collect: () => tally.fold() }),
    );
    for (let i = 0; i < 3; i++) tally.inc('gh', 'ok');
    tally.inc('gh', 'error');
    tally.inc('jira', 'ok');
    let text = await registry.metrics();
    expect(text).toContain('c_total{server="gh",outcome="ok"} 3');
    expect(text).toContain('c_total{server="gh",outcome="error"} 1');
    expect(text).toContain('c_total{server="jira",outcome="ok"} 1');
    // A second scrape adds only what came after the first.
    tally.inc('gh', 'ok');
    text = await registry.metrics();
    expect(text).toContain('c_total{server="gh",outcome="ok"} 4');
    expect(await registry.metrics()).toContain('c_total{server="gh",outcome="ok"} 4');
  });
});
