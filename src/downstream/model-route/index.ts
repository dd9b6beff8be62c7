/** Assembles the model route from the gateway core: providers, the step glue, the route, and gateway.yaml hot reload. */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { loadGatewayConfig } from '../../config/gateway.js';
import { watchGatewayModels } from '../../config/models.js';
import type { GatewayConfig } from '../../config/types.js';
import type { GuardChain } from '../../gateway/chain.js';
import type { LimitsGuard } from '../../gateway/guards/limits.js';
import { ModelSteps, type WorkflowLookup } from '../../gateway/model-steps.js';
import type { Caller, StepSink, WorkflowControl } from '../../gateway/types.js';
import type { LiveAgents } from '../../identity/policy.js';
import { loadTokenizer } from '../../upstream/models/estimate.js';
import { ModelProviders } from '../../upstream/models/providers.js';
import type { AuthResult } from '../mcp-http.js';
import { MODEL_PATHS, ModelRoute } from './route.js';

export { MODEL_PATHS };

export interface ModelRuntimeDeps {
  config: GatewayConfig;
  /** The gateway.yaml that was read, watched for changes to `models`. */
  configFile?: string;
  log: Logger;
  workflows: WorkflowControl;
  lookup: WorkflowLookup;
  chain: GuardChain;
  sinks: readonly StepSink[];
  limits: Pick<LimitsGuard, 'remaining'>;
  agents: LiveAgents;
}

export interface ModelRuntime {
  providers: ModelProviders;
  steps: ModelSteps;
  /** The HTTP route, once the listener knows how to authenticate. */
  route(authenticate: (req: IncomingMessage, resourcePath: string) => AuthResult | Promise<AuthResult>, mayJoinWorkflow: (caller: Caller) => boolean): ModelRoute;
  close(): void;
}

export async function openModelRuntime(deps: ModelRuntimeDeps): Promise<ModelRuntime> {
  const { config, log } = deps;
  // The tokenizer takes ~150 ms to load: paid at start, not by the first call.
  if (config.models.length > 0) await loadTokenizer();
  const providers = new ModelProviders(config.models, log);
  let mayJoin: (caller: Caller) => boolean = () => false;
  const steps = new ModelSteps({
    workflows: deps.workflows,
    lookup: deps.lookup,
    chain: deps.chain,
    sinks: deps.sinks,
    mayJoinWorkflow: (c) => mayJoin(c),
    idleMs: () => config.sessions.idleSeconds * 1000,
  });
  const file = deps.configFile;
  const unwatch = file
    ? watchGatewayModels(
        file,
        () => {
          const r = loadGatewayConfig(file);
          return { problems: r.problems, models: r.config.models, modelRoute: r.config.modelRoute };
        },
        (models, modelRoute) => {
          void loadTokenizer();
          config.models = models;
          config.modelRoute = modelRoute;
          providers.apply(models);
        },
        log,
      )
    : () => {};
  return {
    providers,
    steps,
    route: (authenticate, mayJoinWorkflow) => {
      mayJoin = mayJoinWorkflow;
      return new ModelRoute({ providers, steps, authenticate, agents: deps.agents, config, remaining: (s) => deps.limits.remaining(s), log });
    },
    close: unwatch,
  };
}
