/**
 * Odd credentials against a real gateway over a raw socket (so duplicate headers and any byte reach it): every one is
 * answered 400 or 401 with a clear sentence and a sendable WWW-Authenticate, never 500.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerChallenge } from '../../src/downstream/auth-http.js';
import { shown } from '../../src/identity/claim-text.js';
import { fixtureManifest, initializeMessage, startGateway, stopAll, type RunningGateway } from '../helpers/gateway.js';
import { AUDIENCE, b64url, ISSUER, makeKey, writeJwksFile } from './helpers.js';

let gw: RunningGateway;

beforeAll(async () => {
  const jwksFile = await writeJwksFile(await makeKey('k1'));
  gw = await startGateway({ servers: { conf: fixtureManifest() }, gatewayYaml: { auth: { issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwksFile }] } } });
}, 60_000);
afterAll(() => stopAll());

interface RawAnswer {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

/** POST an initialize to /mcp with these header lines written verbatim (latin1), one request per connection. */
function rawInitialize(headerLines: string[]): Promise<RawAnswer> {
  const { port } = new URL(gw.url);
  const body = JSON.stringify(initializeMessage());
  const head = [`POST /mcp HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Content-Type: application/json', 'Accept: application/json, text/event-stream', ...headerLines, `Content-Length: ${body.length}`, 'Connection: close'];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // Written, not ended: a half-closed request may be dropped by the server before it answers.
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`, 'latin1')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    // A server that refuses a request mid-upload answers and then resets the connection.
    socket.on('error', (err) => (chunks.length === 0 ? reject(err) : undefined));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      resolve({
        status: Number(statusLine!.split(' ')[1]),
        headers: lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]),
        body: text.slice(split + 4),
      });
    });
  });
}

/** An unsigned token with these claims (the gateway refuses it before or at signature verification). */
const forged = (claims: Record<string, unknown>): string => `${b64url({ alg: 'RS256', kid: 'k1' })}.${b64url({ sub: 'x', exp: 4_000_000_000, ...claims })}.${b64url('sig')}`;

const CASES: Array<[string, string[], number, RegExp]> = [
  ['CRLF in iss', [`Authorization: Bearer ${forged({ iss: 'https://evil\r\nX-Evil: 1' })}`], 401, /issuer "https:\/\/evil\\r\\nX-Evil: 1" is not trusted/],
  ['NUL in iss', [`Authorization: Bearer ${forged({ iss: 'a\u0000b' })}`], 401, /issuer "a\\u0000b" is not trusted/],
  ['DEL in iss', [`Authorization: Bearer ${forged({ iss: 'a\u007fb' })}`], 401, /is not trusted/],
  ['non-latin1 iss', [`Authorization: Bearer ${forged({ iss: 'idp.日本' })}`], 401, /issuer "idp.\\u65e5\\u672c" is not trusted/],
  ['line separator in iss', [`Authorization: Bearer ${forged({ iss: 'a\u2028b' })}`], 401, /is not trusted/],
  ['very long iss', [`Authorization: Bearer ${forged({ iss: 'x'.repeat(9000) })}`], 401, /is not trusted/],
  ['iss that is not a string', [`Authorization: Bearer ${forged({ iss: ['a'] })}`], 401, /"iss"/],
  ['a trusted issuer, bad signature', [`Authorization: Bearer ${forged({ iss: ISSUER, aud: AUDIENCE })}`], 401, /signature does not verify/],
  ['payload that is not JSON', [`Authorization: Bearer ${b64url('{')}.${b64url('{')}.x`], 401, /not a well-formed JWT/],
  ['two Authorization headers', ['Authorization: Bearer aaa', 'Authorization: Bearer bbb'], 400, /several Authorization headers.*send exactly one/],
  ['two X-API-Key headers', ['X-API-Key: aaa', 'X-API-Key: bbb'], 400, /several X-API-Key headers.*send exactly one/],
  ['two words after Bearer', ['Authorization: Bearer aaa bbb'], 401, /one token without spaces/],
  ['Bearer and nothing else', ['Authorization: Bearer'], 401, /credential is empty/],
  ['Bearer and blanks', ['Authorization: Bearer \t '], 401, /credential is empty/],
  ['lower-case scheme, tabs and trailing blanks', ['Authorization: bearer\t\tsome-key  '], 401, /API key is not recognised/],
  ['another scheme', ['Authorization: Basic Zm9vOmJhcg=='], 401, /Only Bearer credentials/],
  ['scheme glued to the token', ['Authorization: Bearerabc'], 401, /Only Bearer credentials/],
  ['latin1 bytes in the key', ['Authorization: Bearer cl\u00e9-\u00ff'], 401, /API key is not recognised/],
  ['a 15,000-character key', [`Authorization: Bearer ${'k'.repeat(15_000)}`], 401, /API key is not recognised/],
];

describe('bearer parsing (real gateway, raw socket)', () => {
  it.each(CASES)('%s is refused with a clear sentence', async (_name, lines, status, message) => {
    const answer = await rawInitialize(lines);
    expect(answer.status, answer.body).toBe(status);
    const body = JSON.parse(answer.body) as { error: { message: string; data: { reason: string } } };
    expect(body.error.data.reason).toBe('unauthenticated');
    expect(body.error.message).toMatch(message);
    const challenge = answer.headers.filter(([n]) => n === 'www-authenticate');
    expect(challenge).toHaveLength(1);
    expect(challenge[0]![1]).toMatch(/^Bearer resource_metadata="[^"]+"/);
    expect(challenge[0]![1]).toMatch(/^[\x20-\x7e]*$/);
    expect(answer.headers.map(([n]) => n)).not.toContain('x-evil');
  });

  it('a header too large for the HTTP parser is refused by it (431), and the gateway keeps serving', async () => {
    expect((await rawInitialize([`Authorization: Bearer ${'k'.repeat(70_000)}`])).status).toBe(431);
    expect((await rawInitialize(['Authorization: Bearer x y'])).status).toBe(401);
    expect(gw.logRecords().filter((r) => r.msg === 'request handling failed')).toEqual([]);
  });
});

describe('values from tokens in headers and messages', () => {
  it('a challenge carries visible ASCII only, whatever the description holds', () => {
    const header = bearerChallenge({ publicUrl: 'https://gw.test', resourcePath: '/mcp' }, { error: 'invalid_token', description: 'a\u0000b\u007fc\u2028d日\te' });
    expect(header).toBe('Bearer resource_metadata="https://gw.test/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="a?b?c?d? e"');
  });

  it('shows untrusted values quoted, escaped and cut short', () => {
    expect(shown('a\r\nb')).toBe('"a\\r\\nb"');
    expect(shown('é\u2028')).toBe('"\\u00e9\\u2028"');
    expect(shown(42)).toBe('"42"');
    const long = shown('x'.repeat(500));
    expect(long.length).toBe(120);
    expect(long.endsWith('…"')).toBe(true);
  });
});
