// Rendering inside details for outside eyes: manifest URLs without credentials, echoed names capped.
import { describe, expect, it } from 'vitest';
import { clip, maskUrls, safeUrl } from '../../src/util/shown.js';

describe('safeUrl', () => {
  it('keeps scheme, host, port and path; masks userinfo and every query value; drops the fragment', () => {
    expect(safeUrl('https://bob:hunter2@api.example.com:8443/v1/mcp?api_key=s3cr3t&region=eu#frag')).toBe('https://***@api.example.com:8443/v1/mcp?api_key=***&region=***');
    expect(safeUrl('http://127.0.0.1:9/mcp')).toBe('http://127.0.0.1:9/mcp');
    expect(safeUrl('http://token@host/')).toBe('http://***@host/');
  });

  it('does not echo what it cannot parse', () => {
    expect(safeUrl('not a url ?key=s3cr3t')).toBe('(an invalid URL)');
  });
});

describe('maskUrls', () => {
  it('renders every URL in free text safely and keeps the punctuation after it', () => {
    expect(maskUrls('GET http://u:p@h:1/x?token=abc: 401; retry https://h/y?k=v.')).toBe('GET http://***@h:1/x?token=***: 401; retry https://h/y?k=***.');
    expect(maskUrls('no urls here')).toBe('no urls here');
  });
});

describe('clip', () => {
  it('caps at 80 characters with an ellipsis, leaving short text alone', () => {
    expect(clip('a'.repeat(81))).toBe(`${'a'.repeat(80)}…`);
    expect(clip('a'.repeat(80))).toBe('a'.repeat(80));
  });
});
