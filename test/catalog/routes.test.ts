// Resource routes and qualification from the servers' configuration rank and their own lists.
import { describe, expect, it } from 'vitest';
import { EMPTY_INDEX, exposeUri, ownerOf, ServerOrder, templateScore, type RankedIndexes, type ResourceIndex } from '../../src/catalog/routes.js';

const index = (uris: string[], templates: string[] = []): ResourceIndex => ({ uris: new Set(uris), templates });

describe('ServerOrder', () => {
  it('ranks servers in configuration order; kept servers keep their rank, added ones rank last, removed ones drop out', () => {
    const order = new ServerOrder();
    order.apply(['beta', 'gamma']);
    expect(order.sort(['gamma', 'beta'])).toEqual(['beta', 'gamma']);
    order.apply(['alpha', 'beta', 'gamma']); // alpha.yaml dropped in: it sorts first by name but came later
    expect(order.sort(['alpha', 'gamma', 'beta'])).toEqual(['beta', 'gamma', 'alpha']);
    order.apply(['alpha', 'gamma']);
    order.apply(['alpha', 'beta', 'gamma']); // beta removed and added again: now it is the newest
    expect(order.sort(['beta', 'gamma', 'alpha'])).toEqual(['gamma', 'alpha', 'beta']);
  });
});

describe('templateScore', () => {
  it('matches RFC 6570 expressions and scores by literal text', () => {
    expect(templateScore('fixture://items/{id}', 'fixture://items/42')).toBe('fixture://items/'.length);
    expect(templateScore('fixture://items/{id}', 'fixture://items/4/2')).toBe(-1);
    expect(templateScore('file://{+path}', 'file:///etc/hosts')).toBe('file://'.length);
    expect(templateScore('api://search{?q,page}', 'api://search?q=x&page=2')).toBe('api://search'.length);
    expect(templateScore('api://search{?q}', 'api://searching')).toBe(-1);
    expect(templateScore('a.b://{x}', 'aXb://1')).toBe(-1); // literal text is literal, not a pattern
    expect(templateScore('{x}', 'anything')).toBe(-1); // a template of nothing but variables routes nothing
  });
});

describe('ownerOf and exposeUri', () => {
  const ranked: RankedIndexes = [
    { server: 'first', index: index(['mem://graph', 'x://only-first'], ['x://items/{id}']) },
    { server: 'second', index: index(['mem://graph', 'x://items/special'], ['x://items/{id}', 'x://items/deep/{id}']) },
    { server: 'down', index: EMPTY_INDEX },
  ];

  it('routes a listed URI to the best-ranked server listing it, then by the most specific template, rank breaking ties', () => {
    expect(ownerOf(ranked, 'mem://graph')).toBe('first');
    expect(ownerOf(ranked, 'x://items/special')).toBe('second'); // listed beats a template match
    expect(ownerOf(ranked, 'x://items/7')).toBe('first');
    expect(ownerOf(ranked, 'x://items/deep/7')).toBe('second');
    expect(ownerOf(ranked, 'x://items/{id}')).toBe('first'); // a template itself, for completion references
    expect(ownerOf(ranked, 'y://unknown')).toBeUndefined();
    expect(ownerOf([{ server: 'solo', index: EMPTY_INDEX }], 'y://unknown')).toBe('solo');
  });

  it('qualifies a URI or template only for servers ranked after another that exposes it', () => {
    expect(exposeUri(ranked, 'first', 'mem://graph', 'uri')).toBe('mem://graph');
    expect(exposeUri(ranked, 'second', 'mem://graph', 'uri')).toBe('switchyard+second:mem://graph');
    expect(exposeUri(ranked, 'second', 'x://items/special', 'uri')).toBe('x://items/special');
    expect(exposeUri(ranked, 'second', 'x://items/{id}', 'template')).toBe('switchyard+second:x://items/{id}');
    expect(exposeUri(ranked, 'second', 'x://items/deep/{id}', 'template')).toBe('x://items/deep/{id}');
    // Whatever order the servers' items arrive in, the answer depends on the rank alone.
    const reversed = [...ranked].reverse();
    expect(exposeUri(reversed, 'first', 'mem://graph', 'uri')).toBe('switchyard+first:mem://graph');
  });
});
