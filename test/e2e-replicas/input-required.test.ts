// A 2026-07-28 call held for the client's input across three replicas behind the round-robin balancer: the legacy
// upstream's elicitation/create waits on the replica that took the call, the client's retry with the answer lands
// on another one, which verifies the requestState with the key every replica shares and forwards the retry to the
// holder; another agent replaying the state is refused as on one replica; a holder that is gone means a clear error.
// A 2026-07-28 upstream's own state, sealed by one replica, is taken by any other.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopEverything } from '../helpers/audit-harness.js';
import { REPO_ROOT } from '../helpers/gateway.js';
import { startFixture, stopProcess, type Started } from '../helpers/started-process.js';
import { sha256, startReplicas, statelessCall, type RpcAnswer, type ReplicaSet } from '../helpers/replicas.js';
import { sharedStoresUnavailable, stopTestPostgres } from '../helpers/shared-stores.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`e2e-replicas skipped: ${skip}`);

const ASKER_KEY = 'asker-key-replicas-0101';
const OTHER_KEY = 'other-key-replicas-0102';
const CAPS = { elicitation: {} };

describe.skipIf(skip)('input_required across replicas', () => {
  let set: ReplicaSet;
  let modern: Started;

  beforeAll(async () => {
    modern = await startFixture([join(REPO_ROOT, 'test/conformance-2026/fixture-server.mjs'), '--port', '0'], 'The 2026-07-28 fixture', join(REPO_ROOT, 'test/conformance-2026/node_modules/.bin/node'));
    set = await startReplicas({
      // The revision named, so a slow probe under load cannot make a replica speak 2025-11-25 to it.
      servers: { modern: { transport: 'http', url: modern.value, protocol: '2026-07-28' } },
      agents: {
        asker: { id: 'asker', credentials: { apiKeys: [sha256(ASKER_KEY)] }, tools: { allow: ['fx__*', 'modern__*'] } },
        other: { id: 'other', credentials: { apiKeys: [sha256(OTHER_KEY)] }, tools: { allow: ['fx__*'] } },
      },
    });
  }, 180_000);

  afterAll(async () => {
    await set?.close();
    await stopProcess(modern?.child);
    await stopEverything();
    await stopTestPostgres();
  });

  const ask = (mcpUrl: string, message: string, key = ASKER_KEY) => statelessCall(mcpUrl, 'tools/call', { name: 'fx__elicit', arguments: { message } }, { key, capabilities: CAPS });
  const answer = (mcpUrl: string, message: string, state: unknown, inputKey: string, content: Record<string, unknown>, key = ASKER_KEY, id = 2) =>
    statelessCall(mcpUrl, 'tools/call', { name: 'fx__elicit', arguments: { message }, requestState: state, inputResponses: { [inputKey]: { action: 'accept', content } } }, { key, capabilities: CAPS, id });
  const asked = (a: RpcAnswer) => {
    expect([a.status, a.result?.resultType, a.error]).toEqual([200, 'input_required', undefined]);
    return { state: String(a.result!.requestState), inputKey: Object.keys(a.result!.inputRequests as object)[0]! };
  };

  it('a retry landing on another replica completes the call held on the first, directly and through the balancer', async () => {
    const [r0, r1] = set.replicas;
    const { state, inputKey } = asked(await ask(r0!.mcpUrl, 'Your name?'));
    // The state names its holder and its key: it is not the per-process form of one gateway.
    expect(state).toMatch(/^sy1\.[^.]+\.[0-9a-f-]{36}\.[0-9a-f-]{36}\.[^.]+$/);
    const done = await answer(r1!.mcpUrl, 'Your name?', state, inputKey, { answer: 'Ada' }, ASKER_KEY, 7);
    expect([done.status, done.result?.resultType]).toEqual([200, 'complete']);
    expect(JSON.stringify(done.result?.content)).toContain('Ada');
    // Round-robin: each call and its retry are served by two different replicas, and all three hold a call in turn.
    const holders = new Set<string>();
    for (const name of ['Bo', 'Cy', 'Di']) {
      const a = asked(await ask(set.mcpUrl, `${name}?`));
      holders.add(a.state.split('.')[2]!);
      const b = await answer(set.mcpUrl, `${name}?`, a.state, a.inputKey, { answer: name });
      expect([b.status, b.result?.resultType, JSON.stringify(b.result?.content).includes(name)]).toEqual([200, 'complete', true]);
    }
    expect(holders.size).toBe(3);
  });

  it('another agent replaying the state, altered state or another target is refused on every replica, and the call still completes for its caller', async () => {
    const [r0, r1, r2] = set.replicas;
    const { state, inputKey } = asked(await ask(r0!.mcpUrl, 'q'));
    for (const r of [r0!, r1!, r2!]) {
      const foreign = await answer(r.mcpUrl, 'q', state, inputKey, { answer: 'mallory' }, OTHER_KEY);
      expect([foreign.status, foreign.error?.code, foreign.error?.message]).toEqual([400, -32602, 'Invalid requestState: it was altered, or belongs to another caller or request. Start the request again without requestState.']);
    }
    // The holder named in the state is covered by its seal: pointing it at another replica breaks it.
    const parts = state.split('.');
    const moved = [parts[0], parts[1], '00000000-0000-4000-8000-000000000000', parts[3], parts[4]].join('.');
    const altered = await answer(r1!.mcpUrl, 'q', moved, inputKey, { answer: 'x' });
    expect([altered.status, altered.error?.code]).toEqual([400, -32602]);
    const unknownKey = await answer(r2!.mcpUrl, 'q', ['sy1', 'nokey', ...parts.slice(2)].join('.'), inputKey, { answer: 'x' });
    expect(unknownKey.error?.message).toBe('Invalid requestState: it was not issued by this gateway. Start the request again without requestState.');
    const ok = await answer(r2!.mcpUrl, 'q', state, inputKey, { answer: 'rightful' });
    expect([ok.result?.resultType, JSON.stringify(ok.result?.content).includes('rightful')]).toEqual(['complete', true]);
    // Used once, wherever the replay lands.
    const replayed = await answer(r1!.mcpUrl, 'q', state, inputKey, { answer: 'again' });
    expect([replayed.status, replayed.error?.code]).toEqual([400, -32602]);
    expect(replayed.error?.message).toContain('already used or has expired');
  });

  it('a 2026-07-28 upstream’s state sealed on one replica is taken, round after round, by the others, and only for its caller', async () => {
    const tool = 'modern__test_input_required_result_multi_round';
    const call = (base: string, extra: Record<string, unknown>, key = ASKER_KEY) => statelessCall(base, 'tools/call', { name: tool, arguments: {}, ...extra }, { key, capabilities: CAPS });
    const urls = set.replicas.map((r) => r.mcpUrl);
    let r = await call(urls[0]!, {});
    const answers: Record<string, unknown> = { step1: { action: 'accept', content: { name: 'Ada' } }, step2: { action: 'accept', content: { color: 'green' } } };
    for (let round = 0; r.result?.resultType === 'input_required'; round++) {
      expect(round).toBeLessThan(2);
      const state = String(r.result.requestState);
      expect(state).toMatch(/^sy2\./);
      const key = Object.keys(r.result.inputRequests as object)[0]!;
      const foreign = await call(urls[round + 1]!, { requestState: state, inputResponses: { [key]: answers[key] } }, OTHER_KEY);
      expect([foreign.status, foreign.error?.code]).toEqual([400, -32602]);
      r = await call(urls[round + 1]!, { requestState: state, inputResponses: { [key]: answers[key] } });
    }
    expect(r.result?.content).toEqual([{ type: 'text', text: 'Multi-round complete: Ada likes green' }]);
  });

  it('the holder gone: the retry gets the revision’s invalid-state error, saying to start the request again', async () => {
    const [r0, , r2] = set.replicas;
    const { state, inputKey } = asked(await ask(r2!.mcpUrl, 'still there?'));
    await r2!.kill9();
    const lost = await answer(r0!.mcpUrl, 'still there?', state, inputKey, { answer: 'late' });
    expect([lost.status, lost.error?.code, lost.error?.data?.reason]).toEqual([400, -32602, 'invalid_request_state']);
    expect(lost.error?.message).toBe('Invalid requestState: the gateway replica holding this call is gone (or could not be reached), so the call ended there. Start the request again without requestState.');
    // Starting again works on the replicas that are left.
    const again = asked(await ask(r0!.mcpUrl, 'still there?'));
    const fine = await answer(set.replicas[1]!.mcpUrl, 'still there?', again.state, again.inputKey, { answer: 'fresh' });
    expect(fine.result?.resultType).toBe('complete');
  });
});
