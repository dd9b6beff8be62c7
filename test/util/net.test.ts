import { describe, expect, it } from 'vitest';
import { isLoopback, isLoopbackHost } from '../../src/util/net.js';

describe('loopback', () => {
  it('a remote address is loopback for 127/8, ::1 and IPv4-mapped 127/8, and nothing else', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '::ffff:127.0.0.2']) expect(isLoopback(a), a).toBe(true);
    for (const a of [undefined, '', '10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '::2']) expect(isLoopback(a), String(a)).toBe(false);
  });

  it('a listen host is loopback for localhost and bracketed ::1 too, never for a wildcard', () => {
    for (const h of ['localhost', '[::1]', '::1', '127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', 'example.com']) expect(isLoopbackHost(h), h).toBe(false);
  });
});
