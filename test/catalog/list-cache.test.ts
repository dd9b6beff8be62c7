// The list cache: warm lists ask no upstream; list_changed, reload, restart and reconnect make them list again; one
// answer is kept per variant, so clients that declare different capabilities get their own.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BadCursorError } from '../../src/catalog/lists.js';
import { canonicalJson, clientVariant, ListCache, MAX_PAGE_AGE_MS } from '../../src/catalog/list-cache.js';
import { catalogOf, fakeSession, manifest, names, viewOf, type FakeSession } from './fakes.js';

const tools = (...n: string[]) => ({ 'tools/list': { tools: n.map((name) => ({ name })) } });
const toolCalls = (s: FakeSession) => s.calls.filter((c) => c.startsWith('tools/list')).length;

afterEach(() => {
  vi.useRealTimers();
});

describe('list cache', () => {
  it('answers a warm list without asking the upstream, and synchronously from settled pages', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const fs = fakeSession(tools('read'));
    const view = viewOf({ sessions: { fs } });
    await catalog.list('tools/list', view, undefined);
    expect(names(await catalog.list('tools/list', view, undefined))).toEqual(['fs__read']);
    expect(toolCalls(fs)).toBe(1);
    expect(catalog.cache.stats).toEqual({ hits: 1, misses: 1 });
  });

  it('lists again after the server says the list changed, only for that kind', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const fs = fakeSession({ ...tools('read'), 'prompts/list': { prompts: [{ name: 'p' }] } });
    const view = viewOf({ sessions: { fs } });
    await catalog.list('tools/list', view, undefined);
    await catalog.list('prompts/list', view, undefined);
    fs.lists['tools/list'] = { tools: [{ name: 'read' }, { name: 'write' }] };
    catalog.listChanged('fs', fs.session, 'tools');
    expect(names(await catalog.list('tools/list', view, undefined))).toEqual(['fs__read', 'fs__write']);
    await catalog.list('prompts/list', view, undefined);
    expect(toolCalls(fs)).toBe(2);
    expect(fs.calls.filter((c) => c === 'prompts/list')).toHaveLength(1);
  });

  it('lists again after a reload changes the manifest in place, and after the server is stopped', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const fs = fakeSession(tools('read', 'drop'));
    const view = viewOf({ sessions: { fs } });
    await catalog.list('tools/list', view, undefined);
    catalog.configure(manifest('fs', { exclude: ['drop'] }));
    expect(names(await catalog.list('tools/list', view, undefined))).toEqual(['fs__read']);
    expect(toolCalls(fs)).toBe(2);
    catalog.forget('fs');
    expect(catalog.cache.size('fs')).toBe(0);
    catalog.configure(manifest('fs'));
    await catalog.list('tools/list', view, undefined);
    expect(toolCalls(fs)).toBe(3);
  });

  it('lists again through a new session once every session that could hear a change has closed (a reconnect)', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const first = fakeSession(tools('read'));
    await catalog.list('tools/list', viewOf({ sessions: { fs: first } }), undefined);
    // A second client with a session of its own: the first one still hears list_changed, so its list stands.
    const second = fakeSession(tools('read'));
    await catalog.list('tools/list', viewOf({ sessions: { fs: second } }), undefined);
    expect(toolCalls(second)).toBe(0);
    first.close();
    second.close();
    const third = fakeSession(tools('read', 'new'));
    expect(names(await catalog.list('tools/list', viewOf({ sessions: { fs: third } }), undefined))).toEqual(['fs__read', 'fs__new']);
    expect(toolCalls(third)).toBe(1);
  });

  it('keeps one answer per variant: clients declaring different capabilities get their own lists', async () => {
    const catalog = catalogOf([manifest('ev')]);
    const plain = fakeSession(tools('echo'));
    const sampling = fakeSession(tools('echo', 'sample'));
    const plainView = viewOf({ sessions: { ev: plain }, capabilities: {} });
    const samplingView = viewOf({ sessions: { ev: sampling }, capabilities: { sampling: {} } });
    expect(names(await catalog.list('tools/list', plainView, undefined))).toEqual(['ev__echo']);
    expect(names(await catalog.list('tools/list', samplingView, undefined))).toEqual(['ev__echo', 'ev__sample']);
    expect(names(await catalog.list('tools/list', plainView, undefined))).toEqual(['ev__echo']);
    // A third client declaring the same capabilities in another order shares the sampling answer.
    const same = fakeSession(tools('never asked'));
    const sameView = viewOf({ sessions: { ev: same }, capabilities: { sampling: {} } });
    expect(names(await catalog.list('tools/list', sameView, undefined))).toEqual(['ev__echo', 'ev__sample']);
    expect([toolCalls(plain), toolCalls(sampling), toolCalls(same)]).toEqual([1, 1, 0]);
    // A change reaches every variant of the server.
    catalog.listChanged('ev', plain.session, 'tools');
    await catalog.list('tools/list', samplingView, undefined);
    expect(toolCalls(sampling)).toBe(2);
  });

  it('asks every time a server that never promised list_changed', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const fs = fakeSession(tools('read'), { listChanged: false });
    const view = viewOf({ sessions: { fs } });
    await catalog.list('tools/list', view, undefined);
    await catalog.list('tools/list', view, undefined);
    expect(toolCalls(fs)).toBe(2);
  });

  it('keeps every upstream page behind the gateway cursor', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const fs = fakeSession({ 'tools/list': { tools: [{ name: 'a' }], nextCursor: 'p2' }, 'tools/list@p2': { tools: [{ name: 'b' }] } });
    const view = viewOf({ sessions: { fs } });
    const first = await catalog.list('tools/list', view, undefined);
    const second = await catalog.list('tools/list', view, first.nextCursor as string);
    expect([names(first), names(second), second.nextCursor]).toEqual([['fs__a'], ['fs__b'], undefined]);
    await catalog.list('tools/list', view, first.nextCursor as string);
    expect(fs.calls).toEqual(['tools/list', 'tools/list@p2']);
    await expect(catalog.list('tools/list', view, 'not-ours')).rejects.toBeInstanceOf(BadCursorError);
  });

  it('skips a slow upstream after listTimeoutMs and a down one at once, and keeps no failed page', async () => {
    vi.useFakeTimers();
    const catalog = catalogOf([manifest('fs'), manifest('slow'), manifest('down')], 200);
    const fs = fakeSession(tools('read'));
    const slow = fakeSession(tools('late'), { hang: true });
    const view = viewOf({ sessions: { fs, slow } });
    const withDown = { ...view, servers: [...view.servers, 'down'] };
    const answer = catalog.list('tools/list', withDown, undefined);
    await vi.advanceTimersByTimeAsync(200);
    expect(names(await answer)).toEqual(['fs__read']);
    // The slow server's page is still on its way; the down one's failure was not kept.
    expect(catalog.cache.size('down')).toBe(0);
  });
});

describe('cache keys', () => {
  it('are equal for equal capabilities in any key order and differ by protocol version', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 1, e: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"e":2,"f":1}]},"b":1}');
    expect(clientVariant('2025-11-25', { sampling: {}, roots: { listChanged: true } })).toBe(clientVariant('2025-11-25', { roots: { listChanged: true }, sampling: {} }));
    expect(clientVariant('2025-06-18', {})).not.toBe(clientVariant('2025-11-25', {}));
  });

  it('shares one load between concurrent askers and drops a page that changed while it was loading', async () => {
    const cache = new ListCache();
    const via = { state: 'ready' };
    let resolve!: (v: { items: Array<Record<string, unknown>> }) => void;
    let loads = 0;
    const load = () => (loads++, new Promise<{ items: Array<Record<string, unknown>> }>((r) => (resolve = r)));
    const a = cache.page('s', 'v', 'tools/list', '', via, load);
    const b = cache.page('s', 'v', 'tools/list', '', via, load);
    expect(loads).toBe(1);
    cache.invalidate('s', ['tools']);
    resolve({ items: [{ name: 'old' }] });
    await Promise.all([a, b]);
    cache.page('s', 'v', 'tools/list', '', via, load);
    expect(loads).toBe(2);
  });
});

describe('sessions the cache remembers', () => {
  it('are dropped once closed as new ones arrive, so a long-lived client does not keep closed sessions alive', () => {
    const cache = new ListCache();
    const load = () => Promise.resolve({ items: [] });
    const longLived = { state: 'ready' };
    cache.page('s', 'v', 'tools/list', '', longLived, load);
    for (let i = 0; i < 100; i++) {
      const shortLived = { state: 'ready' };
      cache.page('s', 'v', 'tools/list', '', shortLived, load);
      shortLived.state = 'closed';
    }
    expect(cache.watching('s')).toBeLessThanOrEqual(4);
    // The long-lived session still hears changes: the pages stand for the next session.
    expect(cache.stats.misses).toBe(1);
  });
});

describe('page age', () => {
  it('lists again once a page is older than the longest a page is kept, even without a list_changed', async () => {
    vi.useFakeTimers();
    const catalog = catalogOf([manifest('fs')]);
    const fs = fakeSession(tools('read'));
    const view = viewOf({ sessions: { fs } });
    await catalog.list('tools/list', view, undefined);
    vi.advanceTimersByTime(MAX_PAGE_AGE_MS - 1);
    await catalog.list('tools/list', view, undefined);
    expect(toolCalls(fs)).toBe(1);
    vi.advanceTimersByTime(1);
    await catalog.list('tools/list', view, undefined);
    expect(toolCalls(fs)).toBe(2);
  });
});

describe('the call-time index', () => {
  it('reads the cached pages of a session its client listed through, and asks for a session nobody listed through', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const paged = { 'tools/list': { tools: [{ name: 'a' }], nextCursor: 'p2' }, 'tools/list@p2': { tools: [{ name: 'b' }] } };
    const listed = fakeSession(paged);
    const view = viewOf({ sessions: { fs: listed } });
    await catalog.list('tools/list', view, undefined);
    await catalog.list('tools/list', view, 'eyJmcyI6InAyIn0'); // {"fs":"p2"}
    expect([...(await catalog.index.toolsOf(listed.session)).keys()]).toEqual(['a', 'b']);
    expect(listed.calls).toEqual(['tools/list', 'tools/list@p2']);
    const unlisted = fakeSession(paged);
    expect([...(await catalog.index.toolsOf(unlisted.session)).keys()]).toEqual(['a', 'b']);
    expect(unlisted.calls).toEqual(['tools/list', 'tools/list@p2']);
  });
});
