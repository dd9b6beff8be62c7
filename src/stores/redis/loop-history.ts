/**
 * Loop histories in Redis, so a workflow whose calls land on several replicas is still seen looping:
 *
 *   new RedisLoopHistoryStore({ client, ttlMs?, maxBytes? })
 *
 * A history is one compact JSON string per workflow (`<prefix>loop:<workflowId>`), read on `get`/`open` and written
 * back on `changed`, expiring `ttlMs` after its last change. Over `maxBytes` the oldest calls are dropped first, so a
 * workflow with huge arguments cannot grow without bound. Two replicas recording the same workflow at the same
 * instant may lose one of the two calls from the history (last write wins): loop detection needs repeated calls, so
 * a loop is still caught a call or two later.
 */
import type { LoopCallRecord, LoopHistory, LoopHistoryStore } from '../loop-history.js';
import type { RedisClient, StoreHealth } from './client.js';

export interface RedisLoopHistoryOptions {
  client: RedisClient;
  /** A history expires this long after its last change; default 1 hour (loop windows are seconds to minutes). */
  ttlMs?: number;
  /** Largest stored history; default 64 KiB. */
  maxBytes?: number;
}

/** Stored form: byKey as pairs, recent as [key, tool, args, at], and sweepAt. */
interface Stored {
  k: Array<[string, number[]]>;
  r: Array<[string, string, Record<string, unknown>, number]>;
  s: number;
}

const SWEEP_MIN = 512;

export class RedisLoopHistoryStore implements LoopHistoryStore {
  private readonly client: RedisClient;
  private readonly ttlMs: number;
  private readonly maxBytes: number;

  constructor(opts: RedisLoopHistoryOptions) {
    this.client = opts.client;
    this.ttlMs = opts.ttlMs ?? 3_600_000;
    this.maxBytes = opts.maxBytes ?? 64 * 1024;
  }

  async get(workflowId: string): Promise<LoopHistory | undefined> {
    const raw = await this.client.call((r) => r.get(this.keyOf(workflowId)));
    return raw === null ? undefined : decode(raw);
  }

  async open(workflowId: string): Promise<LoopHistory> {
    return (await this.get(workflowId)) ?? { byKey: new Map(), recent: [], sweepAt: SWEEP_MIN };
  }

  async changed(workflowId: string, history: LoopHistory): Promise<void> {
    const raw = encode(history, this.maxBytes);
    await this.client.call((r) => r.set(this.keyOf(workflowId), raw, 'PX', this.ttlMs));
  }

  async delete(workflowId: string): Promise<void> {
    await this.client.call((r) => r.del(this.keyOf(workflowId)));
  }

  health(): StoreHealth {
    return this.client.health();
  }

  private keyOf(workflowId: string): string {
    return this.client.key(`loop:${workflowId}`);
  }
}

export function encode(h: LoopHistory, maxBytes: number): string {
  const stored: Stored = { k: [...h.byKey], r: h.recent.map((c) => [c.key, c.call.tool, c.call.args, c.at]), s: h.sweepAt };
  let raw = JSON.stringify(stored);
  // Oldest calls first, then the keys seen least recently, until it fits.
  while (Buffer.byteLength(raw) > maxBytes && (stored.r.length > 0 || stored.k.length > 0)) {
    if (stored.r.length > 0) stored.r.splice(0, Math.max(1, Math.ceil(stored.r.length / 4)));
    else {
      stored.k.sort((a, b) => (a[1][a[1].length - 1] ?? 0) - (b[1][b[1].length - 1] ?? 0));
      stored.k.splice(0, Math.max(1, Math.ceil(stored.k.length / 4)));
    }
    raw = JSON.stringify(stored);
  }
  return raw;
}

export function decode(raw: string): LoopHistory | undefined {
  let s: Stored;
  try {
    s = JSON.parse(raw) as Stored;
  } catch {
    return undefined; // unreadable: start the workflow's history afresh rather than fail its calls
  }
  if (!Array.isArray(s.k) || !Array.isArray(s.r)) return undefined;
  const recent: LoopCallRecord[] = s.r.map(([key, tool, args, at]) => ({ key, call: { tool, args }, at }));
  return { byKey: new Map(s.k), recent, sweepAt: typeof s.s === 'number' ? s.s : SWEEP_MIN };
}
