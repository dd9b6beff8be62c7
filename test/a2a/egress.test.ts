/** The egress rules of A2A agents, in process: which addresses are the gateway itself or link-local, and where credentials go. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A2aEgress, EgressRefused, isLinkLocalIp, isLoopbackIp } from '../../src/upstream/a2a-egress.js';
import { a2aManifest } from './agents.js';

const PORT = 4817;
const names: Record<string, string[]> = { 'gw.internal': ['127.0.0.1'], 'imds.example': ['169.254.169.254'], 'agent.example': ['203.0.113.7'], 'v6.example': ['::ffff:127.0.0.1'] };
const egress = new A2aEgress(async (host) => names[host] ?? []);
egress.setListener({ host: '127.0.0.1', port: PORT });
const manifest = a2aManifest('agent', 'https://agent.example/card.json', { headers: { Authorization: 'Bearer s' } });

async function verdict(url: string, m = manifest) {
  return egress.check(new URL(url), m);
}

describe('the gateway itself', () => {
  it.each([
    `http://127.0.0.1:${PORT}/admin/api/workflows/w/pause`,
    `http://localhost:${PORT}/`,
    `http://127.9.9.9:${PORT}/`,
    `http://0.0.0.0:${PORT}/`,
    `http://[::1]:${PORT}/`,
    `http://[::ffff:127.0.0.1]:${PORT}/`,
    `http://2130706433:${PORT}/`,
    `http://gw.internal:${PORT}/`,
    `http://v6.example:${PORT}/`,
  ])('%s is refused, even when allowOrigins lists it', async (url) => {
    const allowing = a2aManifest('agent', 'https://agent.example/', { allowOrigins: [new URL(url).origin] });
    expect(await verdict(url)).toMatchObject({ ok: false, why: 'self' });
    expect(await verdict(url, allowing)).toMatchObject({ ok: false, why: 'self' });
  });

  it('another port on loopback is another service', async () => {
    expect(await verdict(`http://127.0.0.1:${PORT + 1}/`)).toEqual({ ok: true, credentials: false });
  });

  it('publicUrl (a proxy in front of the gateway) is the gateway too', async () => {
    const behindProxy = new A2aEgress(async () => ['203.0.113.9']);
    behindProxy.setListener({ host: '127.0.0.1', port: PORT, publicUrl: 'https://gw.example.com' });
    expect(await behindProxy.check(new URL('https://gw.example.com/admin/api/workflows'), manifest)).toMatchObject({ ok: false, why: 'self' });
  });
});

describe('link-local and metadata addresses', () => {
  it.each(['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/', 'http://metadata.google.internal/computeMetadata/v1/', 'http://imds.example/', 'http://[::ffff:169.254.1.1]/'])(
    '%s is refused unless allowOrigins lists its origin',
    async (url) => {
      expect(await verdict(url)).toMatchObject({ ok: false, why: 'link-local' });
      const allowing = a2aManifest('agent', 'https://agent.example/', { allowOrigins: [new URL(url).origin] });
      expect(await verdict(url, allowing)).toEqual({ ok: true, credentials: true });
    },
  );

  it('classifies addresses', () => {
    expect(isLoopbackIp('127.0.0.2')).toBe(true);
    expect(isLoopbackIp('::ffff:7f00:1')).toBe(true);
    expect(isLoopbackIp('10.0.0.1')).toBe(false);
    expect(isLinkLocalIp('169.254.0.1')).toBe(true);
    expect(isLinkLocalIp('fe80::abcd')).toBe(true);
    expect(isLinkLocalIp('192.168.1.1')).toBe(false);
  });
});

describe('credentials', () => {
  it("go to the manifest url's origin and to allowOrigins only", async () => {
    expect(await verdict('https://agent.example/a2a')).toEqual({ ok: true, credentials: true });
    expect(await verdict('https://other.example/a2a')).toEqual({ ok: true, credentials: false });
    expect(await verdict('http://agent.example/a2a')).toEqual({ ok: true, credentials: false }); // another scheme is another origin
    const allowing = a2aManifest('agent', 'https://agent.example/', { allowOrigins: ['https://other.example'] });
    expect(await verdict('https://other.example/a2a', allowing)).toEqual({ ok: true, credentials: true });
  });
});

describe('fetchFor', () => {
  let target: http.Server;
  let redirector: http.Server;
  let targetUrl: string;
  let redirectUrl: string;
  const seen: Array<string | undefined> = [];

  beforeAll(async () => {
    target = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.end('ok');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    redirector = http.createServer((req, res) => {
      res.writeHead(307, { location: req.url === '/to-self' ? `http://127.0.0.1:${PORT}/admin/api/workflows/w/pause` : `${targetUrl}/landed` });
      res.end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    redirectUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    target.close();
    redirector.close();
  });

  it('checks every redirect hop, and drops the credentials when a redirect leaves the origin', async () => {
    const m = a2aManifest('agent', `${redirectUrl}/card.json`, { headers: { Authorization: 'Bearer manifest-secret' } });
    const f = egress.fetchFor(m);
    await expect(f(`${redirectUrl}/to-self`, { method: 'POST', body: '{}' })).rejects.toBeInstanceOf(EgressRefused);
    const res = await f(`${redirectUrl}/elsewhere`, { method: 'POST', body: '{}' });
    expect(await res.text()).toBe('ok');
    expect(seen).toEqual([undefined]);
  });
});

describe('lookupFor (node:http connections)', () => {
  const resolveWith = (url: string, host: string, all: boolean) =>
    new Promise<{ err: Error | null; address: unknown }>((resolve) => {
      egress.lookupFor(new URL(url), manifest)(host, { all }, (err, address) => resolve({ err, address }));
    });

  it('refuses at connect time a name that resolves to the gateway itself', async () => {
    const { err } = await resolveWith(`http://localhost:${PORT}/a2a`, 'localhost', false);
    expect(err).toBeInstanceOf(EgressRefused);
    expect((err as EgressRefused).why).toBe('self');
  });

  it('hands back the addresses of an allowed name, one or all as asked', async () => {
    expect(typeof (await resolveWith(`http://localhost:${PORT + 1}/a2a`, 'localhost', false)).address).toBe('string');
    const all = await resolveWith(`http://localhost:${PORT + 1}/a2a`, 'localhost', true);
    expect(all.err).toBeNull();
    expect(Array.isArray(all.address)).toBe(true);
  });
});
