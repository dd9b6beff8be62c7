// deploy/: every YAML parses; the Kubernetes set runs 3 replicas with /readyz and /healthz probes, a PDB, a Service
// that selects the pods, and Secret references for the audit key, admin token and database URLs; compose runs Redis,
// PostgreSQL, 3 replicas and nginx; the gateway.yaml and agents they ship load without problems; nginx -t and
// kubectl kustomize run only when installed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadGatewayConfig } from '../../src/config/gateway.js';
import { loadAgentFile } from '../../src/config/agents.js';
import { loadServerFile } from '../../src/config/servers.js';

const DEPLOY = fileURLToPath(new URL('../../deploy', import.meta.url));
// Parsed manifests are walked field by field; a missing field fails the assertion that reads it.
type Doc = Record<string, any>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(n) ? [p] : [];
  });
}

function docsOf(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { merge: true });
  for (const d of docs) if (d.errors.length > 0) throw new Error(`${relative(DEPLOY, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
  return docs.map((d) => d.toJS() as Doc).filter(Boolean);
}

const scratch = mkdtempSync(join(tmpdir(), 'switchyard-deploy-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const k8s = yamlFiles(join(DEPLOY, 'kubernetes')).flatMap(docsOf);
const byKind = (kind: string): Doc[] => k8s.filter((d) => d.kind === kind);
const env = { SWITCHYARD_REDIS_URL: 'redis://redis:6379/0', SWITCHYARD_POSTGRES_URL: 'postgres://sy@db:5432/switchyard', SWITCHYARD_ADMIN_TOKEN_SHA256: `sha256:${'a'.repeat(64)}` };

describe('deploy/', () => {
  it('every YAML file parses', () => {
    const files = yamlFiles(DEPLOY);
    expect(files.map((f) => relative(DEPLOY, f)).sort()).toEqual(expect.arrayContaining(['compose.yaml', 'kubernetes/deployment.yaml', 'kubernetes/pdb.yaml', 'kubernetes/service.yaml', 'kubernetes/configmap.yaml']));
    for (const f of files) expect(docsOf(f).length, relative(DEPLOY, f)).toBeGreaterThan(0);
  });

  it('the Deployment runs 3 replicas with readiness on /readyz and liveness on /healthz', () => {
    const [deployment] = byKind('Deployment');
    expect(deployment!.spec.replicas).toBe(3);
    const container = deployment!.spec.template.spec.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    // The host check refuses a pod IP in Host: probes name localhost.
    for (const probe of [container.readinessProbe, container.livenessProbe]) expect(probe.httpGet.httpHeaders).toContainEqual({ name: 'Host', value: 'localhost' });
    const advertise = container.env.find((e: Doc) => e.name === 'SWITCHYARD_ADVERTISE_URL');
    expect(advertise.value).toBe('http://$(POD_IP):8080');
    expect(container.env.findIndex((e: Doc) => e.name === 'POD_IP')).toBeLessThan(container.env.indexOf(advertise));
  });

  it('secrets come from the Secret: audit HMAC key, admin token hash, Redis and PostgreSQL URLs', () => {
    const spec = byKind('Deployment')[0]!.spec.template.spec;
    const fromSecret = spec.containers[0].env.filter((e: Doc) => e.valueFrom?.secretKeyRef).map((e: Doc) => e.valueFrom.secretKeyRef.key);
    expect(fromSecret.sort()).toEqual(['admin-token-sha256', 'postgres-url', 'redis-url']);
    const secretVolume = spec.volumes.find((v: Doc) => v.secret);
    expect(secretVolume.secret.items).toEqual([{ key: 'audit-hmac.key', path: 'audit-hmac.key' }]);
    const names = new Set(spec.volumes.flatMap((v: Doc) => [v.secret?.secretName, v.configMap?.name]).filter(Boolean));
    expect(names).toEqual(new Set(['switchyard-secrets', 'switchyard-gateway', 'switchyard-servers', 'switchyard-agents']));
    const example = byKind('Secret')[0]!;
    expect(Object.keys(example.stringData).sort()).toEqual(['admin-token-sha256', 'audit-hmac.key', 'postgres-url', 'redis-url']);
  });

  it('the Service and the PodDisruptionBudget select the pods, and the PDB keeps two of three', () => {
    const labels = byKind('Deployment')[0]!.spec.template.metadata.labels;
    const [service] = byKind('Service');
    const [pdb] = byKind('PodDisruptionBudget');
    expect(service!.spec.selector).toEqual(labels);
    expect(service!.spec.ports[0].targetPort).toBe('http');
    expect(pdb!.apiVersion).toBe('policy/v1');
    expect(pdb!.spec.selector.matchLabels).toEqual(labels);
    expect(pdb!.spec.minAvailable).toBe(2);
  });

  it("the ConfigMaps' gateway.yaml, servers and agents load without problems", () => {
    const maps = Object.fromEntries(byKind('ConfigMap').map((m): [string, Record<string, string>] => [m.metadata.name, m.data as Record<string, string>]));
    const gw = join(scratch, 'k8s-gateway.yaml');
    writeFileSync(gw, maps['switchyard-gateway']!['gateway.yaml']!);
    const loaded = loadGatewayConfig(gw, {}, { env });
    expect(loaded.problems).toEqual([]);
    expect(loaded.config.host).toBe('0.0.0.0');
    expect(loaded.config.state.redis).toBe(env.SWITCHYARD_REDIS_URL);
    expect(loaded.config.store.postgres).toBe(env.SWITCHYARD_POSTGRES_URL);
    expect(loaded.config.auth.issuers.length + loaded.config.admin.tokens.length).toBeGreaterThan(0); // 0.0.0.0 needs identity
    for (const [name, text] of Object.entries(maps['switchyard-agents']!)) {
      const file = join(scratch, name);
      writeFileSync(file, text);
      expect(loadAgentFile(file).problems).toEqual([]);
    }
    for (const [name, text] of Object.entries(maps['switchyard-servers']!)) {
      const file = join(scratch, name);
      writeFileSync(file, text);
      expect(loadServerFile(file, { env: {} }).problems).toEqual([]);
    }
  });

  it('compose runs Redis, PostgreSQL, three replicas advertising themselves, and nginx with its config', () => {
    const [compose] = docsOf(join(DEPLOY, 'compose.yaml'));
    const services = compose!.services as Record<string, Doc>;
    expect(Object.keys(services).sort()).toEqual(['gateway-1', 'gateway-2', 'gateway-3', 'nginx', 'postgres', 'redis']);
    for (const n of [1, 2, 3]) {
      const s = services[`gateway-${n}`]!;
      expect(s.environment.SWITCHYARD_ADVERTISE_URL).toBe(`http://gateway-${n}:8080`);
      expect(s.environment.SWITCHYARD_REDIS_URL).toBe('redis://redis:6379/0');
      expect(s.volumes).toContain('./compose/gateway.yaml:/etc/switchyard/gateway.yaml:ro');
    }
    expect(services.nginx!.volumes).toContain('./compose/nginx.conf:/etc/nginx/nginx.conf:ro');
    const loaded = loadGatewayConfig(join(DEPLOY, 'compose', 'gateway.yaml'), {}, { env });
    expect(loaded.problems).toEqual([]);
    expect(loaded.config.state).toMatchObject({ redis: env.SWITCHYARD_REDIS_URL, failMode: 'closed' });
    for (const f of readdirSync(join(DEPLOY, 'compose', 'agents.d'))) expect(loadAgentFile(join(DEPLOY, 'compose', 'agents.d', f)).problems).toEqual([]);
    const nginx = readFileSync(join(DEPLOY, 'compose', 'nginx.conf'), 'utf8');
    expect([...nginx.matchAll(/^\s*server (gateway-\d):8080/gm)].map((m) => m[1])).toEqual(['gateway-1', 'gateway-2', 'gateway-3']);
    expect(nginx).toMatch(/proxy_buffering off;/);
    expect(nginx).not.toMatch(/\b(ip_hash|sticky|hash \$)/);
  });

  const nginxBin = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();
  it.skipIf(!nginxBin)('nginx -t accepts the balancer config (upstream names mapped to loopback)', () => {
    const conf = join(scratch, 'nginx.conf');
    mkdirSync(join(scratch, 'nginx'), { recursive: true });
    writeFileSync(conf, readFileSync(join(DEPLOY, 'compose', 'nginx.conf'), 'utf8').replace(/gateway-\d:8080/g, '127.0.0.1:8080'));
    const r = spawnSync(nginxBin, ['-t', '-c', conf, '-p', join(scratch, 'nginx'), '-g', 'pid nginx.pid; error_log stderr;'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  const kubectl = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();
  it.skipIf(!kubectl)('kubectl kustomize builds the set', () => {
    const r = spawnSync(kubectl, ['kustomize', join(DEPLOY, 'kubernetes')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const kinds = parseAllDocuments(r.stdout).map((d) => (d.toJS() as Doc).kind);
    expect(kinds.sort()).toEqual(['ConfigMap', 'ConfigMap', 'ConfigMap', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Service']);
  });
});
