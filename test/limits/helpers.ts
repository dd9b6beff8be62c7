/** Shared fixtures for the limits tests: a controllable clock, temp dirs, agents, steps and a fake workflow registry. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentManifest } from '../../src/config/types.js';
import { GuardChain } from '../../src/gateway/chain.js';
import type { Caller, Guard, GuardContext, Step, StepKind, WorkflowControl, WorkflowState } from '../../src/gateway/types.js';

export class FakeClock {
  constructor(public t = Date.UTC(2026, 0, 1, 12, 0, 0)) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const dirs: string[] = [];

/** A fresh directory, removed by removeTempDirs() (call it from afterEach). */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'switchyard-limits-'));
  dirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function agent(id: string, limits: AgentManifest['limits'] = {}, team?: string): AgentManifest {
  return {
    id,
    team,
    credentials: { apiKeys: [] },
    tools: { allow: ['*'], deny: [], rules: [] },
    a2a: { allow: [] },
    models: { allow: [], deny: [] },
    delegation: { agents: [], maxDepth: 0, maxChildren: 0 },
    limits,
    source: { file: `agents.d/${id}.yaml`, line: 1 },
  };
}

let stepNo = 0;

export function step(
  manifest: AgentManifest | undefined,
  opts: { workflowId?: string; kind?: StepKind; tool?: string; args?: Record<string, unknown>; agentId?: string } = {},
): Step {
  const agentId = opts.agentId ?? manifest?.id ?? 'local';
  const caller: Caller = { agentId, principal: agentId, chain: [manifest?.id ?? 'local'], agent: manifest, via: 'local' };
  const tool = opts.tool ?? 'fs__read_file';
  return {
    kind: opts.kind ?? 'tools/call',
    caller,
    workflowId: opts.workflowId ?? 'wf-1',
    stepNo: ++stepNo,
    target: tool.split('__').pop() ?? tool,
    exposedName: tool,
    args: opts.args ?? {},
    startedAt: 0,
  };
}

/** In-memory WorkflowControl with the same observable behaviour the audit room's registry promises. */
export class FakeWorkflows implements WorkflowControl {
  readonly states = new Map<string, WorkflowState>();
  readonly whys = new Map<string, string | undefined>();
  private listeners: Array<(id: string, state: WorkflowState, why?: string) => void> = [];
  private n = 0;
  private steps = new Map<string, number>();

  begin(init: { id?: string }): string {
    const id = init.id ?? `wf-${++this.n}`;
    this.states.set(id, 'active');
    return id;
  }
  nextStep(workflowId: string): number {
    const n = (this.steps.get(workflowId) ?? 0) + 1;
    this.steps.set(workflowId, n);
    return n;
  }
  state(workflowId: string): WorkflowState | undefined {
    return this.states.get(workflowId);
  }
  setState(workflowId: string, state: WorkflowState, why?: string): void {
    this.states.set(workflowId, state);
    this.whys.set(workflowId, why);
    for (const l of this.listeners) l(workflowId, state, why);
  }
  onStateChange(listener: (workflowId: string, state: WorkflowState, why?: string) => void): void {
    this.listeners.push(listener);
  }
}

/** One guard walked as the gateway walks it: its check, then (when allowed) its commit. */
export function chained(guard: Guard): (s: Step, ctx: GuardContext) => ReturnType<GuardChain['run']> {
  const chain = new GuardChain([guard]);
  return (s, ctx) => chain.run(s, ctx);
}
