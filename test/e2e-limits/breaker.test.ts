// The upstream circuit breaker through a real gateway and a real HTTP upstream (issue 5): consecutive failures open
// it; while open, calls fail at once with upstream_unavailable and nothing reaches the upstream; after the cooldown
// (the manifest's breaker.cooldownSeconds, short here) a probe to the upstream restarted on the same port closes it.
import http from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectClient, scratch, startFixture, waitFor, type RunningFixture } from '../helpers/gateway.js';
import { call, launch, makeHome, stopEverything, upstreamCalls, type CallOutcome } from '../helpers/audit-harness.js';

/** The breaker's default threshold (src/limits/breaker.ts), in force when the manifest does not set `breaker.failures`. */
const THRESHOLD = 5;
/** The cooldown the first test's manifest sets, instead of the 10 s default. */
const COOLDOWN_MS = 3_000;

afterAll(stopEverything);

function portOf(url: string): number {
  return Number(new URL(url).port);
}

function breakerState(o: CallOutcome): unknown {
  return o.ok ? undefined : o.data.breaker;
}

/** Call until the breaker answers (or `max` calls), returning every outcome. */
async function callUntilOpen(client: Awaited<ReturnType<typeof connectClient>>, name: string, max: number): Promise<CallOutcome[]> {
  const outcomes: CallOutcome[] = [];
  for (let i = 0; i < max; i++) {
    const o = await call(client, name, { text: `probe-${i}` }, { timeoutMs: 30_000 });
    outcomes.push(o);
    if (breakerState(o) === 'open') break;
  }
  return outcomes;
}

describe('circuit breaker', () => {
  it('a stopped upstream opens it after consecutive failures; restarted on the same port, a probe closes it after the cooldown', async () => {
    const dir = scratch('switchyard-breaker-');
    const statsBefore = join(dir, 'before.jsonl');
    const statsAfter = join(dir, 'after.jsonl');
    let fixture: RunningFixture = await startFixture('http', ['--stats-file', statsBefore]);
    const port = portOf(fixture.url);
    const home = makeHome({ servers: { up: { url: fixture.url, transport: 'http', timeoutMs: 20_000, breaker: { cooldownSeconds: COOLDOWN_MS / 1000 } } } });
    const gw = await launch(home);
    const client = await connectClient(gw.mcpUrl);
    expect((await call(client, 'up__echo', { text: 'before' })).ok).toBe(true);

    await fixture.stop();
    const outcomes = await callUntilOpen(client, 'up__echo', 3 * THRESHOLD);
    const failures = outcomes.slice(0, -1);
    const open = outcomes.at(-1)!;
    // Each failure is reported as such, never as an empty success.
    for (const f of failures) expect(!f.ok && [f.code, f.data.reason]).toEqual([-32030, 'upstream_unavailable']);
    expect(failures).toHaveLength(THRESHOLD);
    expect(breakerState(open)).toBe('open');
    expect(!open.ok && open.data).toMatchObject({ reason: 'upstream_unavailable', server: 'up' });
    expect(!open.ok && open.code).toBe(-32030);
    // No later than when the refused call was sent: the circuit opened on the failure before it.
    const openedAt = Date.now() - open.ms;
    // The log line comes over the gateway's stdout, which may be read after the HTTP answer.
    await waitFor(() => gw.logs.some((l) => l.includes("circuit breaker for 'up' is open")), { what: 'the breaker open log line' });

    // Bring the upstream back on the same port. The circuit stays open (fast refusals, nothing reaches it) until the
    // cooldown lets one probe through, which succeeds and closes it.
    fixture = await startFixture('http', ['--stats-file', statsAfter, '--port', String(port)]);
    const refusedWhileOpen: CallOutcome[] = [];
    const first = await waitFor(
      async () => {
        const o = await call(client, 'up__echo', { text: 'after' }, { timeoutMs: 30_000 });
        if (o.ok) return { at: Date.now(), o };
        refusedWhileOpen.push(o);
        expect(upstreamCalls(statsAfter).length).toBe(0);
        return undefined;
      },
      { timeoutMs: COOLDOWN_MS + 20_000, intervalMs: 250, what: 'the breaker to close after the cooldown' },
    );
    expect(refusedWhileOpen.length).toBeGreaterThan(0);
    for (const r of refusedWhileOpen) {
      expect(breakerState(r)).toBe('open');
      expect(r.ms).toBeLessThan(1000);
    }
    expect(first.at - openedAt).toBeGreaterThanOrEqual(COOLDOWN_MS - 1000);
    expect(upstreamCalls(statsAfter).length).toBe(1);
    await waitFor(() => gw.logs.some((l) => l.includes("circuit breaker for 'up' is closed")), { what: 'the breaker closed log line' });
    for (let i = 0; i < 3; i++) expect((await call(client, 'up__echo', { text: `closed-${i}` })).ok).toBe(true);
    expect(upstreamCalls(statsAfter).length).toBe(4);
  }, 90_000);

  it('an upstream that stops answering trips it on timeouts; then calls fail well under the timeout without reaching it', async () => {
    const timeoutMs = 2000;
    const fixture = await startFixture('http');
    const port = portOf(fixture.url);
    const home = makeHome({ servers: { hang: { url: fixture.url, transport: 'http', timeoutMs } } });
    const gw = await launch(home);
    const client = await connectClient(gw.mcpUrl);
    expect((await call(client, 'hang__echo', { text: 'before' })).ok).toBe(true);
    await fixture.stop();

    // Same port, accepts every request and never answers.
    let calls = 0;
    const sockets = new Set<Socket>();
    const blackhole = http.createServer((req) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        if (body.includes('"tools/call"')) calls++;
      });
    });
    blackhole.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => blackhole.listen(port, '127.0.0.1', () => r()));
    try {
      const outcomes = await callUntilOpen(client, 'hang__echo', 3 * THRESHOLD);
      const timeouts = outcomes.slice(0, -1);
      const open = outcomes.at(-1)!;
      expect(timeouts).toHaveLength(THRESHOLD);
      for (const t of timeouts) {
        expect(!t.ok && t.data.reason).toBe('upstream_timeout');
        expect(t.ms).toBeGreaterThanOrEqual(timeoutMs - 100);
      }
      expect(calls).toBe(THRESHOLD);
      expect(breakerState(open)).toBe('open');
      expect(!open.ok && open.data.reason).toBe('upstream_unavailable');
      // Fast: well under the per-call timeout, and the upstream never saw it.
      expect(open.ms).toBeLessThan(timeoutMs / 3);
      expect(!open.ok && open.data.retryAfterSeconds).toBeGreaterThan(0);
      for (let i = 0; i < 5; i++) {
        const o = await call(client, 'hang__echo', { text: `fast-${i}` });
        expect(breakerState(o)).toBe('open');
        expect(o.ms).toBeLessThan(timeoutMs / 3);
      }
      expect(calls).toBe(THRESHOLD);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => blackhole.close(() => r()));
    }
  }, 90_000);
});
