import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  adminTokenCheck,
  bearerChallenge,
  protectedResourceMetadata,
  queryHasAccessToken,
  resourceMetadataUrl,
  resourcePathOfMetadataRequest,
  sendInsufficientScope,
  sendUnauthorized,
} from '../../src/downstream/auth-http.js';
import { sha256Hex } from '../../src/identity/apikeys.js';

function fakeResponse() {
  const sent: { status?: number; headers: Record<string, string>; body?: unknown } = { headers: {} };
  const res = {
    writeHead(status: number, headers: Record<string, string>) {
      sent.status = status;
      sent.headers = headers;
      return res;
    },
    end(text: string) {
      sent.body = JSON.parse(text);
    },
  };
  return { res: res as unknown as ServerResponse, sent };
}

describe('protected resource metadata (RFC 9728)', () => {
  it('names the resource, the issuers as authorization servers and header-only bearer tokens', () => {
    const issuers = [{ issuer: 'https://idp.test', audience: 'x' }, 'https://idp.test', 'https://other.test'];
    expect(protectedResourceMetadata('https://gw.test/', issuers)).toEqual({
      resource: 'https://gw.test/mcp',
      authorization_servers: ['https://idp.test', 'https://other.test'],
      bearer_methods_supported: ['header'],
    });
    expect(protectedResourceMetadata('https://gw.test', [], '/servers/github/mcp', ['tools'])).toMatchObject({
      resource: 'https://gw.test/servers/github/mcp',
      scopes_supported: ['tools'],
    });
    expect(protectedResourceMetadata('https://gw.test', [], '').resource).toBe('https://gw.test');
  });

  it('places the well-known segment before the resource path, and maps it back', () => {
    expect(resourceMetadataUrl('https://gw.test/', '/mcp')).toBe('https://gw.test/.well-known/oauth-protected-resource/mcp');
    expect(resourcePathOfMetadataRequest('/.well-known/oauth-protected-resource')).toBe('');
    expect(resourcePathOfMetadataRequest('/.well-known/oauth-protected-resource/servers/gh/mcp')).toBe('/servers/gh/mcp');
    expect(resourcePathOfMetadataRequest('/.well-known/oauth-protected-resourcex')).toBeUndefined();
    expect(resourcePathOfMetadataRequest('/mcp')).toBeUndefined();
  });
});

describe('challenges', () => {
  const where = { publicUrl: 'https://gw.test', resourcePath: '/mcp' };

  it('sends 401 with resource_metadata and the error', () => {
    const { res, sent } = fakeResponse();
    sendUnauthorized(res, { ...where, error: 'invalid_token', description: 'token expired' });
    expect(sent.status).toBe(401);
    expect(sent.headers['www-authenticate']).toBe(
      'Bearer resource_metadata="https://gw.test/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="token expired"',
    );
    expect(sent.body).toMatchObject({ error: { code: -32030, message: 'token expired', data: { reason: 'unauthenticated' } } });
  });

  it('sends 403 insufficient_scope with the scope needed', () => {
    const { res, sent } = fakeResponse();
    sendInsufficientScope(res, 'admin', where);
    expect(sent.status).toBe(403);
    expect(sent.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(sent.headers['www-authenticate']).toContain('scope="admin"');
  });

  it('cannot be broken out of by quotes or line breaks in a message', () => {
    expect(bearerChallenge(undefined, { error: 'invalid_token', description: 'a "quoted"\r\nX-Evil: 1' })).toBe(
      'Bearer error="invalid_token", error_description="a \\"quoted\\" X-Evil: 1"',
    );
  });
});

describe('request helpers', () => {
  it('spots access_token in the query string only', () => {
    expect(queryHasAccessToken('/mcp?access_token=abc')).toBe(true);
    expect(queryHasAccessToken('/mcp?x=1&access_token=')).toBe(true);
    expect(queryHasAccessToken('/mcp/access_token')).toBe(false);
    expect(queryHasAccessToken('/mcp?x=1')).toBe(false);
  });

  it('checks admin tokens against sha256 hashes', () => {
    const check = adminTokenCheck([`sha256:${sha256Hex('admin-secret')}`, 'not-a-hash']);
    expect(check('Bearer admin-secret')).toBe(true);
    expect(check('bearer   admin-secret ')).toBe(true);
    expect(check('Bearer admin-secret2')).toBe(false);
    expect(check('admin-secret')).toBe(false);
    expect(check(undefined)).toBe(false);
    expect(adminTokenCheck([])('Bearer anything')).toBe(false);
  });
});
