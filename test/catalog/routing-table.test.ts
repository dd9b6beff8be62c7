// The routing table per view: federated names and qualified URIs on /mcp, the upstream's own on /servers/{name}/mcp.
import { describe, expect, it } from 'vitest';
import { shortenName } from '../../src/catalog/naming.js';
import { resolveNameIn } from '../../src/catalog/routing-table.js';
import { serversInView } from '../../src/catalog/view.js';
import { allowAll } from '../../src/catalog/access.js';
import { catalogOf, fakeSession, manifest, viewOf } from './fakes.js';

const longPrompt = 'a-prompt-name-long-enough-to-be-shortened-by-the-gateway-every-time';

describe('routing table', () => {
  const catalog = catalogOf([manifest('a'), manifest('b')]);
  const lists = {
    'resources/list': { resources: [{ uri: 'file:///shared' }, { uri: 'file:///only-b' }] },
    'resources/templates/list': { resourceTemplates: [{ uriTemplate: 'db://{table}/rows' }] },
    'prompts/list': { prompts: [{ name: 'greet' }, { name: longPrompt }] },
  };
  const sessions = { a: fakeSession({ 'resources/list': { resources: [{ uri: 'file:///shared' }] } }), b: fakeSession(lists) };

  it('federated: resolves namespaced names and only for configured servers', () => {
    const routes = catalog.routes(viewOf({ sessions }));
    expect(routes.resolveName('b__greet')).toEqual({ server: 'b', name: 'greet', exposed: 'b__greet' });
    expect(routes.resolveName('zz__greet')).toBeUndefined();
    expect(routes.resolveName('nounderscore')).toBeUndefined();
    expect(routes.showName('b', 'greet')).toBe('b__greet');
  });

  it('federated: routes plain URIs by listing, template and rank, and qualified ones to their server', async () => {
    const routes = catalog.routes(viewOf({ sessions }));
    expect(await routes.resolveResource('file:///shared')).toEqual({ server: 'a', uri: 'file:///shared' });
    expect(await routes.resolveResource('file:///only-b')).toEqual({ server: 'b', uri: 'file:///only-b' });
    expect(await routes.resolveResource('db://users/rows')).toEqual({ server: 'b', uri: 'db://users/rows' });
    expect(await routes.resolveResource('switchyard+b:file:///shared')).toEqual({ server: 'b', uri: 'file:///shared' });
    expect(await routes.resolveResource('switchyard+zz:file:///shared')).toBeUndefined();
    expect(await routes.resolveResource('nowhere://x')).toBeUndefined();
  });

  it('federated: resolves a shortened prompt name from the upstream list, without anyone listing prompts first', async () => {
    const routes = catalog.routes(viewOf({ sessions }));
    const exposed = shortenName('b', longPrompt);
    expect(await routes.resolvePrompt(exposed)).toEqual({ server: 'b', name: longPrompt, exposed });
    expect(await routes.resolvePrompt('b__missing')).toBeUndefined();
  });

  it('single: names and URIs are the upstream own, policy names stay namespaced', async () => {
    const routes = catalog.routes(viewOf({ sessions, single: 'b' }));
    expect(routes.resolveName('greet')).toEqual({ server: 'b', name: 'greet', exposed: 'b__greet' });
    expect(routes.showName('b', 'greet')).toBe('greet');
    expect(routes.confirmName({ server: 'b', name: 'greet', exposed: 'b__greet' }, new Map([['greet', 1]]))).toBe('greet');
    expect(routes.confirmName({ server: 'b', name: 'nope', exposed: 'b__nope' }, new Map([['greet', 1]]))).toBeUndefined();
    expect(await routes.resolveResource('file:///shared')).toEqual({ server: 'b', uri: 'file:///shared' });
    expect(await routes.resolvePrompt('greet')).toEqual({ server: 'b', name: 'greet', exposed: 'b__greet' });
    expect((await routes.uriExposer())('b', 'file:///shared', 'uri')).toBe('file:///shared');
  });

  it('a name routes without a view: the same answer as either routing table, from the name table and the configured servers', () => {
    for (const name of ['b__greet', 'zz__greet', 'nounderscore', shortenName('b', longPrompt)]) {
      expect(resolveNameIn(catalog, undefined, name)).toEqual(catalog.routes(viewOf({ sessions })).resolveName(name));
    }
    expect(resolveNameIn(catalog, 'b', 'greet')).toEqual({ server: 'b', name: 'greet', exposed: 'b__greet' });
    expect(resolveNameIn(catalog, 'gone', 'greet')).toBeUndefined();
  });

  it('single on a server that is not configured routes nothing', async () => {
    const routes = catalog.routes(viewOf({ sessions: { gone: fakeSession({}) }, single: 'gone' }));
    expect(routes.resolveName('x')).toBeUndefined();
    expect(await routes.resolveResource('file:///x')).toBeUndefined();
  });

  it('servers in view: the reachable configured ones, or the single one if reachable', () => {
    const access = { ...allowAll, server: (s: string) => s !== 'b' };
    expect(serversInView(['a', 'b', 'c'], access)).toEqual(['a', 'c']);
    expect(serversInView(['a', 'b'], access, 'b')).toEqual([]);
    expect(serversInView(['a', 'b'], access, 'a')).toEqual(['a']);
    expect(serversInView(['a'], access, 'zz')).toEqual([]);
  });
});
