// The console's sign-in across three replicas behind the round-robin balancer: a cookie session made on one replica
// is valid on the others, with the same CSRF token guarding writes everywhere; signing out on one ends it on all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopEverything } from '../helpers/audit-harness.js';
import { sha256, startReplicas, type ReplicaSet } from '../helpers/replicas.js';
import { sharedStoresUnavailable, stopTestPostgres } from '../helpers/shared-stores.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`e2e-replicas skipped: ${skip}`);

const ADMIN = 'admin-token-console-replicas-0201';

describe.skipIf(skip)('console sessions across replicas', () => {
  let set: ReplicaSet;

  beforeAll(async () => {
    set = await startReplicas({ gatewayYaml: { admin: { tokens: [sha256(ADMIN)] } } });
  }, 180_000);

  afterAll(async () => {
    await set?.close();
    await stopEverything();
    await stopTestPostgres();
  });

  const whoIs = (base: string, cookie: string) => fetch(`${base}/ui/api/session`, { headers: { cookie } });
  /** A console write past the gate: an unknown workflow answers 404 once the session and its CSRF token are taken. */
  const pause = (base: string, headers: Record<string, string>) => fetch(`${base}/admin/api/workflows/wf-none/pause`, { method: 'POST', headers });

  it('a session made on one replica reads and writes on every other, only with its CSRF token, and signs out everywhere', async () => {
    const [r0, r1, r2] = set.replicas.map((r) => r.url);
    const signIn = await fetch(`${r0}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: ADMIN }) });
    expect(signIn.status).toBe(200);
    const { csrf, admin } = (await signIn.json()) as { csrf: string; admin: string };
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    for (const base of [r1!, r2!, set.url, set.url, set.url]) {
      const who = await whoIs(base, cookie);
      expect([base, who.status, await who.json()]).toEqual([base, 200, { admin, csrf }]);
      expect((await fetch(`${base}/admin/api/workflows`, { headers: { cookie } })).status).toBe(200);
    }
    for (const base of [r1!, r2!]) {
      for (const headers of [{ cookie }, { cookie, 'x-csrf-token': 'wrong' }] as Array<Record<string, string>>) {
        const refused = await pause(base, headers);
        expect([refused.status, ((await refused.json()) as { error: string }).error]).toEqual([403, 'csrf']);
      }
      expect((await pause(base, { cookie, 'x-csrf-token': csrf })).status).toBe(404);
    }
    // Signing out on a third replica (with the token, as the console sends it) ends the session on every replica.
    expect((await fetch(`${r2}/ui/api/session`, { method: 'DELETE', headers: { cookie } })).status).toBe(403);
    expect((await fetch(`${r2}/ui/api/session`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf } })).status).toBe(204);
    for (const base of [r0!, r1!, r2!]) {
      expect((await whoIs(base, cookie)).status).toBe(401);
      expect((await fetch(`${base}/admin/api/workflows`, { headers: { cookie } })).status).toBe(401);
      expect((await pause(base, { cookie, 'x-csrf-token': csrf })).status).toBe(401);
    }
  });
});
