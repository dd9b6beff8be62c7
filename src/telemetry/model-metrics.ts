/** Model-call metrics: tokens and cost by model, agent and team, and time to first token by model. */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Step, StepOutcome } from '../gateway/types.js';

const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
/** Agents without a team share this label value. */
const NO_TEAM = '';

export class ModelMetrics {
  private readonly tokens: Counter<'model' | 'agent' | 'team' | 'type'>;
  private readonly cost: Counter<'model' | 'agent' | 'team'>;
  private readonly ttft: Histogram<'model'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.tokens = new Counter({
      name: 'switchyard_model_tokens_total',
      help: 'Model tokens by model, agent, team and type (input, output, cached_input; cached input is part of input).',
      labelNames: ['model', 'agent', 'team', 'type'],
      registers,
    });
    this.cost = new Counter({ name: 'switchyard_model_cost_usd_total', help: 'Model spend in US dollars by model, agent and team.', labelNames: ['model', 'agent', 'team'], registers });
    this.ttft = new Histogram({ name: 'switchyard_model_ttft_seconds', help: 'Time to first token of model calls through the gateway, by model.', labelNames: ['model'], buckets: TTFT_BUCKETS, registers });
  }

  /** Model names here are configured ones (unknown names never become steps), so labels stay bounded. */
  observe(step: Step, outcome: StepOutcome): void {
    const m = outcome.model;
    if (!m) return;
    const agent = step.caller.agentId;
    const team = step.caller.agent?.team ?? NO_TEAM;
    const model = step.model?.model ?? m.model;
    if (m.tokens.input > 0) this.tokens.labels(model, agent, team, 'input').inc(m.tokens.input);
    if (m.tokens.output > 0) this.tokens.labels(model, agent, team, 'output').inc(m.tokens.output);
    if (m.tokens.cachedInput > 0) this.tokens.labels(model, agent, team, 'cached_input').inc(m.tokens.cachedInput);
    if (m.costUsd > 0) this.cost.labels(model, agent, team).inc(m.costUsd);
    if (m.ttftMs !== undefined && Number.isFinite(m.ttftMs)) this.ttft.labels(model).observe(m.ttftMs / 1000);
  }
}
