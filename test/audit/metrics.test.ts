import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/telemetry/metrics.js';
import { ok, refused, step } from './helpers.js';

describe('Metrics', () => {
  it('renders the gateway metrics in Prometheus text format', async () => {
    const metrics = new Metrics();
    metrics.observeStep(step({ workflowId: 'wf', stepNo: 1 }), ok(25));
    metrics.observeStep(step({ workflowId: 'wf', stepNo: 2 }), ok(5));
    metrics.observeStep(step({ workflowId: 'wf', stepNo: 3, target: 'delete_repo' }), refused('policy_denied'));
    metrics.observeStep(step({ workflowId: 'wf', stepNo: 4, server: undefined, target: 'random-name-1' }), refused('invalid_request'));
    metrics.observeStep(step({ workflowId: 'wf', stepNo: 5, kind: 'resources/read', target: 'file:///etc/hosts' }), ok(1));
    metrics.setUpstreamUp('github', true);
    metrics.setUpstreamUp('jira', false);
    metrics.setSessions(3);
    metrics.trackActiveWorkflows(() => 2);
    metrics.trackAuditQueue(() => 17);
    metrics.trackAuditWriter(() => ({ failedFlushes: 4, dropped: 9 }));
    metrics.countRefusal('unauthenticated');

    const text = await metrics.render();
    expect(metrics.contentType).toMatch(/^text\/plain/);
    expect(text).toContain('switchyard_calls_total{server="github",tool="search",outcome="ok"} 2');
    expect(text).toContain('switchyard_calls_total{server="github",tool="delete_repo",outcome="refused"} 1');
    expect(text).toContain('switchyard_calls_total{server="(unrouted)",tool="(unrouted)",outcome="refused"} 1');
    expect(text).toContain('switchyard_calls_total{server="github",tool="resources/read",outcome="ok"} 1');
    expect(text).not.toContain('/etc/hosts');
    expect(text).toContain('switchyard_call_duration_seconds_bucket{le="0.025",server="github"} 4');
    expect(text).toContain('switchyard_call_duration_seconds_count{server="github"} 4');
    expect(text).toContain('switchyard_refusals_total{reason="policy_denied"} 1');
    expect(text).toContain('switchyard_refusals_total{reason="unauthenticated"} 1');
    expect(text).toContain('switchyard_upstream_up{server="github"} 1');
    expect(text).toContain('switchyard_upstream_up{server="jira"} 0');
    expect(text).toContain('switchyard_sessions_active 3');
    expect(text).toContain('switchyard_workflows_active 2');
    expect(text).toContain('switchyard_audit_queue_depth 17');
    expect(text).toContain('switchyard_audit_write_failures_total 4');
    expect(text).toContain('switchyard_audit_records_dropped_total 9');
    expect(text).toContain('process_cpu_user_seconds_total');

    metrics.removeUpstream('jira');
    expect(await metrics.render()).not.toContain('server="jira"');
  });

  it('never labels a series with a tool or prompt name the upstream did not confirm', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.observeStep(step({ workflowId: 'wf', stepNo: 1, target: 'client-chosen-1', unverified: true }), refused('rate_limited'));
    metrics.observeStep(step({ workflowId: 'wf', stepNo: 2, kind: 'prompts/get', target: 'client-chosen-2', unverified: true }), ok(1));
    const text = await metrics.render();
    expect(text).not.toContain('client-chosen');
    expect(text).toContain('switchyard_calls_total{server="github",tool="(unverified)",outcome="refused"} 1');
  });

  it('keeps separate instances independent', async () => {
    const a = new Metrics({ processMetrics: false });
    const b = new Metrics({ processMetrics: false });
    a.setSessions(5);
    expect(await b.render()).toContain('switchyard_sessions_active 0');
    expect(await a.render()).not.toContain('process_cpu');
  });
});
