/**
 * Who a stateless request is, without a session: its workflow (delegated token `wf`, X-Workflow-Id, or the
 * W3C trace it belongs to) and the lane of upstream sessions it reuses (one per principal, view and declared
 * client capabilities, released when idle).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Gateway } from '../../gateway/gateway.js';
import type { View } from '../../gateway/client-session.js';
import type { Caller } from '../../gateway/types.js';
import { chooseWorkflow } from '../../identity/workflow-choice.js';
import type { RpcMessage } from '../../util/jsonrpc.js';
import type { ModernMeta } from './envelope.js';

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
/** A lane nobody used for this long gives its upstream sessions back. */
export const LANE_IDLE_MS = 60_000;

export type WorkflowOfRequest =
  | { ok: true; workflowId: string | undefined; traceparent?: string }
  | { ok: false; workflowId: string; message: string };

/**
 * The workflow a request joins. A delegated token's `wf` and an allowed X-Workflow-Id work as for sessions; without
 * either, requests of one agent in one W3C trace join one workflow (keyed by agent and trace id, so a trace id
 * never reaches another agent's workflow). undefined: the request starts its own.
 */
export function workflowOf(
  caller: Caller,
  workflowHeader: string | undefined,
  traceparentHeader: string | undefined,
  mayJoin: ((caller: Caller) => boolean) | undefined,
): WorkflowOfRequest {
  const traceparent = traceparentHeader && TRACEPARENT.test(traceparentHeader) ? traceparentHeader : undefined;
  const choice = chooseWorkflow(caller, workflowHeader, mayJoin);
  if (!choice.ok) return choice;
  if (choice.workflowId !== undefined || !traceparent) return { ...choice, traceparent };
  const traceId = TRACEPARENT.exec(traceparent)![1]!;
  const key = createHash('sha256').update(`${caller.agentId}\u0000${traceId}`).digest('hex').slice(0, 32);
  return { ok: true, workflowId: `trace-${key}`, traceparent };
}

type Listener = (msg: RpcMessage) => void;

interface Lane {
  id: string;
  lastUsed: number;
  active: number;
  /** The requests in flight on this lane: what its upstream sessions say outside a call reaches them. */
  listeners: Set<Listener>;
}

/** A request's hold on its lane. */
export interface LaneTicket {
  id: string;
  /** Hand a message an upstream session sent outside any call to every request in flight on the lane. */
  broadcast: Listener;
  done: () => void;
}

/** Upstream sessions of stateless callers, shared by their requests and released when a lane goes idle. */
export class Lanes {
  private readonly lanes = new Map<string, Lane>();
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly gw: Gateway, private readonly idleMs = LANE_IDLE_MS) {
    this.reaper = setInterval(() => void this.reap(), Math.max(250, Math.floor(idleMs / 2)));
    this.reaper.unref();
  }

  /** The lane for this caller, view and declared capabilities; `done` must be called when the request ends. */
  enter(caller: Caller, view: View, meta: ModernMeta, listener: Listener): LaneTicket {
    const key = JSON.stringify([caller.principal, view.single ?? '', meta.clientCapabilities, meta.clientInfo.name]);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { id: `lane-${randomUUID()}`, lastUsed: Date.now(), active: 0, listeners: new Set() };
      this.lanes.set(key, lane);
    }
    lane.active++;
    lane.listeners.add(listener);
    const entered = lane;
    let left = false;
    return {
      id: lane.id,
      broadcast: (msg) => {
        for (const l of entered.listeners) l(msg);
      },
      done: () => {
        if (left) return;
        left = true;
        entered.active--;
        entered.listeners.delete(listener);
        entered.lastUsed = Date.now();
      },
    };
  }

  get size(): number {
    return this.lanes.size;
  }

  /** Release the upstream sessions of lanes idle for idleMs (or all idle lanes, with `now` past every deadline). */
  async reap(now = Date.now()): Promise<void> {
    const idle: Lane[] = [];
    for (const [key, lane] of this.lanes) {
      if (lane.active === 0 && now - lane.lastUsed >= this.idleMs) {
        this.lanes.delete(key);
        idle.push(lane);
      }
    }
    await Promise.all(idle.flatMap((lane) => [...this.gw.pools.values()].map((pool) => pool.release(lane.id))));
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    await this.reap(Number.POSITIVE_INFINITY);
  }
}
