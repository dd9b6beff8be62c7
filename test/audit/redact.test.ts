import { describe, expect, it } from 'vitest';
import { compileRedactor, DEFAULT_REDACT_PATTERNS, REDACTED } from '../../src/audit/redact.js';

const redact = compileRedactor(DEFAULT_REDACT_PATTERNS);
const isRedacted = (key: string): boolean => (redact({ [key]: 'v' }) as Record<string, unknown>)[key] === REDACTED;

describe('redaction by key words', () => {
  it.each([
    'password', 'Password', 'PASSWORD', 'passwd', 'user_password', 'passwordHash', 'db.password', 'pass phrase',
    'token', 'accessToken', 'access_token', 'refresh-token', 'ID_TOKEN', 'oauth2Token', 'token2', 'X-Auth-Token',
    'secret', 'client_secret', 'client-secret', 'clientSecret', 'SECRET_KEY',
    'Authorization', 'authorization', 'proxy-authorization',
    'apiKey', 'api_key', 'API_KEY', 'api-key', 'x-api-key', 'X-API-KEY', 'apikey', 'APIKey', 'myAPIKey', 'openai.api_key',
    'privateKey', 'private_key', 'PRIVATE-KEY', 'ssh private key',
    'credentials', 'awsCredential', 'cookie', 'Set-Cookie',
  ])('redacts %s', (key) => {
    expect(isRedacted(key)).toBe(true);
  });

  it.each(['tokenizer', 'monkey', 'keyboard', 'key', 'max_tokens', 'secretary', 'passage', 'author', 'cookiecutter', 'text', 'query'])(
    'keeps %s',
    (key) => {
      expect(isRedacted(key)).toBe(false);
    },
  );

  it('matches configured patterns as words whatever their spelling, nested in objects and arrays', () => {
    const r = compileRedactor(['X-Session-Id', 'bearer']);
    expect(r({ sessionId: 'a', x_session_id: 'b', XSessionID: 'c', session: 'd', list: [{ Bearer: 'e', bearerish: 'f' }] })).toEqual({
      sessionId: 'a',
      x_session_id: REDACTED,
      XSessionID: REDACTED,
      session: 'd',
      list: [{ Bearer: REDACTED, bearerish: 'f' }],
    });
  });

  it('leaves the input untouched and shares unchanged subtrees', () => {
    const input = { keep: { deep: [1, 2] }, nested: { apiKey: 'k' } };
    const out = redact(input) as typeof input;
    expect(input.nested.apiKey).toBe('k');
    expect(out.keep).toBe(input.keep);
    expect(out.nested).toEqual({ apiKey: REDACTED });
  });
});
