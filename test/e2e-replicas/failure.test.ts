// Replicas when something fails (issue 16): a replica killed with SIGKILL under load in strict audit mode loses no
// acknowledged call from the shared trail, and `switchyard audit verify` passes over it; Redis stopped → every
// replica's /readyz fails and calls are refused naming Redis; Redis back → the same processes serve again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAudit, runCli, stopEverything } from '../helpers/audit-harness.js';
import { waitFor } from '../helpers/gateway.js';
import { echo, startReplicas, type ReplicaSet } from '../helpers/replicas.js';
import { sharedStoresUnavailable, stopTestPostgres } from '../helpers/shared-stores.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`e2e-replicas skipped: ${skip}`);

const readyStatus = async (url: string) => (await fetch(`${url}/readyz`)).status;

describe.skipIf(skip)('replicas under failure', () => {
  let set: ReplicaSet;

  beforeAll(async () => {
    // Local mode: loopback callers as agent `local`, the admin API open to them.
    set = await startReplicas({ gatewayYaml: { audit: { durability: 'strict' } } });
  }, 180_000);

  afterAll(async () => {
    await set?.close();
    await stopEverything();
    await stopTestPostgres();
  });

  it('SIGKILL of one replica under load: every acknowledged call is in the shared trail, and audit verify passes', async () => {
    const acked: string[] = [];
    let failed = 0;
    let killedAt = -1;
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const text = `kill-${w}-${i}`;
        const a = await echo(set.mcpUrl, text).catch(() => undefined);
        if (a?.result && !a.result.isError) acked.push(text);
        else failed++;
        if (killedAt < 0 && acked.length >= 15) {
          killedAt = acked.length;
          await set.replicas[1]!.kill9();
        }
        if (killedAt >= 0 && acked.length >= killedAt + 30) stop = true;
      }
    };
    await Promise.all([0, 1, 2, 3].map(worker));
    console.log(`SIGKILL under load: ${acked.length} calls acknowledged (${killedAt} before the kill), ${failed} failed in flight`);
    expect(killedAt).toBeGreaterThan(0);

    const trail = new Set((await allAudit(set.replicas[0]!.url)).map((r) => r.args?.text).filter((t): t is string => typeof t === 'string'));
    const missing = acked.filter((t) => !trail.has(t));
    expect(missing).toEqual([]);

    const verify = await runCli(['audit', 'verify', '--config', set.home.configPath, '--key', set.auditKey]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/ok|verified/i);
    await set.restart(1);
  });

  it('Redis stopped: /readyz fails on every replica and calls are refused naming Redis; Redis back: the same processes serve again', async () => {
    const pids = set.replicas.map((r) => r.proc.pid);
    expect((await echo(set.mcpUrl, 'before redis stops')).error).toBeUndefined();
    await set.redis.stop();
    for (const r of set.replicas) await waitFor(async () => ((await readyStatus(r.url)) === 503 ? true : undefined), { what: `replica ${r.url} not ready`, timeoutMs: 10_000 });
    const body = (await (await fetch(`${set.replicas[0]!.url}/readyz`)).json()) as { unavailable?: string[] };
    expect(body.unavailable).toContain('redis');
    for (let i = 0; i < 3; i++) {
      const refused = await echo(set.mcpUrl, `while redis is down ${i}`);
      expect(refused.error).toMatchObject({ code: -32030, data: { reason: 'upstream_unavailable', unavailable: ['redis'], failMode: 'closed' } });
      expect(refused.error!.message).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0.*retry in a few seconds/);
    }
    for (const r of set.replicas) expect(r.logs.some((l) => /Redis at .* unreachable: .*calls are refused until it is back/.test(l))).toBe(true);

    await set.redis.start();
    for (const r of set.replicas) await waitFor(async () => ((await readyStatus(r.url)) === 200 ? true : undefined), { what: `replica ${r.url} ready again`, timeoutMs: 15_000 });
    for (let i = 0; i < 3; i++) expect((await echo(set.mcpUrl, `after redis is back ${i}`)).error).toBeUndefined();
    expect(set.replicas.map((r) => r.proc.pid)).toEqual(pids);
    for (const r of set.replicas) expect(r.logs.some((l) => /Redis at .* is reachable again/.test(l))).toBe(true);
  });
});

describe.skipIf(skip)('failMode open', () => {
  let set: ReplicaSet;
  beforeAll(async () => {
    set = await startReplicas({ replicas: 1, failMode: 'open' });
  }, 120_000);
  afterAll(async () => {
    await set?.close();
    // The first describe stopped the file's server; this one started another.
    await stopTestPostgres();
  });

  it('Redis stopped: /readyz fails but calls are admitted and logged; Redis back: ready again', async () => {
    const [r] = set.replicas as [ReplicaSet['replicas'][0]];
    await set.redis.stop();
    await waitFor(async () => ((await readyStatus(r.url)) === 503 ? true : undefined), { what: 'not ready', timeoutMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      const a = await echo(set.mcpUrl, `open while redis is down ${i}`);
      expect(a.error, JSON.stringify(a)).toBeUndefined();
    }
    expect(r.logs.filter((l) => /admitting calls while Redis at .* is unreachable \(state\.failMode: open\)/.test(l))).toHaveLength(1);
    await set.redis.start();
    await waitFor(async () => ((await readyStatus(r.url)) === 200 ? true : undefined), { what: 'ready again', timeoutMs: 15_000 });
    expect((await echo(set.mcpUrl, 'open after redis is back')).error).toBeUndefined();
    expect(r.logs.some((l) => /call\(s\) were admitted without shared state meanwhile/.test(l))).toBe(true);
  });
});
