// Redaction through a real gateway (issue 4): a `password` argument reaches the upstream untouched but never the audit
// database (checked on the bytes of every file in the data dir after a clean stop) nor the gateway's log.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectClient } from '../helpers/gateway.js';
import {
  admin,
  allAudit,
  call,
  fixtureGatewaySuite,
  upstreamCallsWithText,
  workflowOfMarker,
} from '../helpers/audit-harness.js';

const SECRET = 'hunter2-SECRET';
const suite = fixtureGatewaySuite();

describe('redaction of secret arguments', () => {
  it('stores [REDACTED] in the trail while the upstream gets the real value', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    expect((await call(client, 'fx__echo', { text: 'x', password: SECRET })).ok).toBe(true);
    expect((await call(client, 'fx__echo', { text: 'nested', options: { apiToken: `${SECRET}-2`, list: [{ Authorization: `Bearer ${SECRET}-3` }] } })).ok).toBe(true);
    const spellings = { text: 'spellings', 'x-api-key': `${SECRET}-5`, 'api-key': `${SECRET}-6`, private_key: `${SECRET}-7`, PRIVATE_KEY: `${SECRET}-8`, accessToken: `${SECRET}-9`, tokenizer: 'cl100k', monkey: 'bananas' };
    expect((await call(client, 'fx__echo', spellings)).ok).toBe(true);
    // A refused call's arguments are stored too (refused here by an admin pause).
    await admin(suite.gw.url, `/workflows/${await workflowOfMarker(suite.gw.url, 'x')}/pause`, 'POST');
    const refused = await call(client, 'fx__echo', { text: 'refused', client_secret: `${SECRET}-4` });
    expect(!refused.ok && refused.data.reason).toBe('workflow_paused');

    // The gateway forwards arguments untouched: redaction is for the record, not the call.
    const received = upstreamCallsWithText(suite.home.statsFile, 'x');
    expect(received).toHaveLength(1);
    expect((received[0]!.params?.arguments as Record<string, unknown>).password).toBe(SECRET);

    const records = await allAudit(suite.gw.url);
    const byText = new Map(records.map((r) => [r.args?.text, r]));
    expect(byText.get('x')?.args).toEqual({ text: 'x', password: '[REDACTED]' });
    expect(byText.get('nested')?.args).toEqual({ text: 'nested', options: { apiToken: '[REDACTED]', list: [{ Authorization: '[REDACTED]' }] } });
    expect(byText.get('spellings')?.args).toEqual({
      text: 'spellings',
      'x-api-key': '[REDACTED]',
      'api-key': '[REDACTED]',
      private_key: '[REDACTED]',
      PRIVATE_KEY: '[REDACTED]',
      accessToken: '[REDACTED]',
      tokenizer: 'cl100k',
      monkey: 'bananas',
    });
    expect(byText.get('refused')).toMatchObject({ outcome: 'refused', args: { text: 'refused', client_secret: '[REDACTED]' } });
    const exported = await (await fetch(`${suite.gw.url}/admin/api/audit/export`)).text();
    expect(exported).not.toContain(SECRET);
  });

  it('after a clean stop no file in the data dir and no log line holds the secret', async () => {
    await suite.gw.stop();
    expect(suite.gw.proc.exitCode).toBe(0);
    // Every file below the data dir, the signing keys' folder included.
    const files = (readdirSync(suite.home.dataDir, { recursive: true }) as string[]).filter((f) => !statSync(join(suite.home.dataDir, f)).isDirectory());
    expect(files).toContain('switchyard.db');
    const needle = Buffer.from(SECRET, 'utf8');
    for (const f of files) {
      const bytes = readFileSync(join(suite.home.dataDir, f));
      expect(bytes.includes(needle), `${f} holds the secret`).toBe(false);
      // SQLite stores TEXT as UTF-8 here, but make sure no UTF-16 copy hides either.
      expect(bytes.includes(Buffer.from(SECRET, 'utf16le')), `${f} holds the secret (UTF-16)`).toBe(false);
    }
    // The records are really there (the check above is not passing on an empty file).
    expect(readFileSync(join(suite.home.dataDir, 'switchyard.db')).includes(Buffer.from('[REDACTED]'))).toBe(true);
    expect(suite.gw.stdout()).not.toContain(SECRET);
    expect(suite.gw.logs.join('\n')).not.toContain(SECRET);
    expect(suite.gw.logs.some((l) => l.includes('"msg":"step"'))).toBe(true);
  });
});
