// Gateway configurations the benchmark compares against a direct connection.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

/** A JWT issuer (JWKS file), one agent with a 50-rule policy, and generous limits: the full identity/policy/limits path. */
async function secured(dir) {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setIssuer('https://issuer.bench')
    .setAudience('switchyard')
    .setSubject('svc-bench')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(privateKey);
  const deny = Array.from({ length: 25 }, (_, i) => `    - "*__drop_${i}_*"`).join('\n');
  const rules = Array.from({ length: 24 }, (_, i) => `    - tool: "bench__delete_${i}"\n      args: { table: "tmp_*" }`).join('\n');
  writeFileSync(
    join(dir, 'agents.d', 'bench.yaml'),
    `id: bench
owner: bench@example.com
team: perf
credentials:
  jwt: { sub: "svc-bench" }
tools:
  allow: ["bench__*"]
  deny:
${deny}
  rules:
${rules}
    - tool: "bench__add"
      args: { a: "*" }
limits:
  workflow: { steps: 100000000, toolCalls: 100000000 }
  perMinute: { toolCalls: 100000000 }
  loop: { sameCall: 100000000, windowSeconds: 60 }
`,
  );
  return {
    gatewayYaml: `auth:\n  issuers:\n    - issuer: https://issuer.bench\n      audience: switchyard\n      jwksFile: ${join(dir, 'jwks.json')}\n`,
    headers: { authorization: `Bearer ${token}` },
  };
}

export const variants = {
  gateway: {
    async setup() {
      return { gatewayYaml: '' };
    },
  },
  'gateway-audit-off': {
    async setup() {
      return { gatewayYaml: 'audit:\n  enabled: false\n' };
    },
  },
  'gateway-secured': { setup: secured },
  'gateway-secured-audit-off': {
    async setup(dir) {
      const s = await secured(dir);
      return { ...s, gatewayYaml: `${s.gatewayYaml}audit:\n  enabled: false\n` };
    },
  },
};
variants.pipe = { pipe: 'pipe.mjs' };
// A blind HTTP reverse proxy (Node's HTTP server, bodies as bytes): what terminating HTTP costs before any work.
variants['pipe-http'] = { pipe: 'pipe-http.mjs' };
// The default gateway, measured with 2026-07-28 clients (bench/run.mjs sends stateless POSTs for it).
variants['gateway-2026'] = { ...variants.gateway, modern: true };
