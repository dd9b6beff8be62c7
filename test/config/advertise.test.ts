// Where the other replicas reach this one: gateway.yaml's state.advertiseUrl, else the concrete listen host, else
// (listening on every interface) SWITCHYARD_ADVERTISE_URL or the first non-internal IPv4; nothing found is an error that says what to set.
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { advertiseUrlFor } from '../../src/config/advertise.js';

const iface = (address: string, internal: boolean, family: 'IPv4' | 'IPv6' = 'IPv4') => ({ address, internal, family, netmask: '', mac: '', cidr: null }) as NetworkInterfaceInfo;
const interfaces = () => ({ lo: [iface('127.0.0.1', true)], eth0: [iface('fe80::1', false, 'IPv6'), iface('10.1.2.3', false)] });
const none = () => ({ lo: [iface('127.0.0.1', true)] });

describe('advertise URL', () => {
  it('state.advertiseUrl wins over everything', () => {
    expect(advertiseUrlFor({ host: '0.0.0.0', state: { advertiseUrl: 'https://gw-1.internal:8443' } }, 8080, { env: { SWITCHYARD_ADVERTISE_URL: 'http://x:1' }, interfaces })).toBe('https://gw-1.internal:8443');
  });

  it('a concrete listen host is used with the bound port (IPv6 in brackets)', () => {
    expect(advertiseUrlFor({ host: '10.0.0.5', state: {} }, 41234, { env: { SWITCHYARD_ADVERTISE_URL: 'http://x:1' }, interfaces })).toBe('http://10.0.0.5:41234');
    expect(advertiseUrlFor({ host: 'fd00::5', state: {} }, 8080, { interfaces })).toBe('http://[fd00::5]:8080');
  });

  it('on every interface: SWITCHYARD_ADVERTISE_URL, else the first non-internal IPv4', () => {
    expect(advertiseUrlFor({ host: '0.0.0.0', state: {} }, 8080, { env: { SWITCHYARD_ADVERTISE_URL: 'http://pod-1.gw:8080/' }, interfaces })).toBe('http://pod-1.gw:8080');
    expect(advertiseUrlFor({ host: '0.0.0.0', state: {} }, 8080, { env: {}, interfaces })).toBe('http://10.1.2.3:8080');
    expect(advertiseUrlFor({ host: '::', state: {} }, 9000, { env: {}, interfaces })).toBe('http://10.1.2.3:9000');
  });

  it('a malformed SWITCHYARD_ADVERTISE_URL or no address at all is an error naming what to set', () => {
    expect(() => advertiseUrlFor({ host: '0.0.0.0', state: {} }, 8080, { env: { SWITCHYARD_ADVERTISE_URL: 'pod-1:8080' }, interfaces })).toThrow(/SWITCHYARD_ADVERTISE_URL 'pod-1:8080' is not an http\(s\) URL/);
    expect(() => advertiseUrlFor({ host: '0.0.0.0', state: {} }, 8080, { env: {}, interfaces: none })).toThrow(/set state\.advertiseUrl in gateway\.yaml or SWITCHYARD_ADVERTISE_URL/);
  });
});
