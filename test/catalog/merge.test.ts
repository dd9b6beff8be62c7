// One merge per list method, with the manifest's filters and the caller's access applied inside the merge.
import { describe, expect, it } from 'vitest';
import type { Access } from '../../src/catalog/access.js';
import { MERGE } from '../../src/catalog/merge.js';
import { catalogOf, fakeSession, manifest, names, viewOf } from './fakes.js';

const access = (over: Partial<Access>): Access => ({ tool: () => true, prompt: () => true, resource: () => true, ...over });

describe('merge per list method', () => {
  it('tools: drops what the manifest filters out and what the caller may not see, judged on namespaced names', async () => {
    const catalog = catalogOf([manifest('fs', { exclude: ['delete_*'] }), manifest('git')]);
    const sessions = {
      fs: fakeSession({ 'tools/list': { tools: [{ name: 'read' }, { name: 'delete_all' }, { name: 'write', 'x-extra': 1 }] } }),
      git: fakeSession({ 'tools/list': { tools: [{ name: 'log' }, { name: 'push' }] } }),
    };
    const seen: string[] = [];
    const view = viewOf({ sessions, access: access({ tool: (n) => (seen.push(n), n !== 'git__push' && n !== 'fs__write') }) });
    const result = await catalog.list('tools/list', view, undefined);
    expect(names(result)).toEqual(['fs__read', 'git__log']);
    // The filter comes first: a name the manifest hides never reaches the policy.
    expect(seen).not.toContain('fs__delete_all');
    // Definitions are passed through whole, unknown fields included.
    const again = await catalog.list('tools/list', viewOf({ sessions }), undefined);
    expect((again.tools as Array<Record<string, unknown>>).find((t) => t.name === 'fs__write')).toEqual({ name: 'fs__write', 'x-extra': 1 });
  });

  it('tools on a single server: names unprefixed, access still decided on the namespaced name', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const sessions = { fs: fakeSession({ 'tools/list': { tools: [{ name: 'read' }, { name: 'write' }] } }) };
    const result = await catalog.list('tools/list', viewOf({ sessions, single: 'fs', access: access({ tool: (n) => n === 'fs__read' }) }), undefined);
    expect(names(result)).toEqual(['read']);
  });

  it('prompts: namespaced, filtered by prompt access (tool filters do not apply to prompts)', async () => {
    const catalog = catalogOf([manifest('fs', { include: ['none'] })]);
    const sessions = { fs: fakeSession({ 'prompts/list': { prompts: [{ name: 'greet' }, { name: 'secret' }] } }) };
    const result = await catalog.list('prompts/list', viewOf({ sessions, access: access({ prompt: (n) => n !== 'fs__secret' }) }), undefined);
    expect(names(result, 'prompts')).toEqual(['fs__greet']);
  });

  it('resources and templates: a URI two servers share is plain for the better-ranked one and qualified for the other', async () => {
    const catalog = catalogOf([manifest('a'), manifest('b')]);
    const lists = {
      'resources/list': { resources: [{ uri: 'file:///x' }, { uri: 'file:///hidden' }] },
      'resources/templates/list': { resourceTemplates: [{ uriTemplate: 'file:///{p}' }] },
    };
    const sessions = { b: fakeSession(lists), a: fakeSession(lists) };
    const view = viewOf({ sessions, access: access({ resource: (_s, uri) => uri !== 'file:///hidden' }) });
    const resources = await catalog.list('resources/list', view, undefined);
    expect(names(resources, 'resources').sort()).toEqual(['file:///x', 'switchyard+b:file:///x']);
    const templates = await catalog.list('resources/templates/list', view, undefined);
    expect(names(templates, 'resourceTemplates').sort()).toEqual(['file:///{p}', 'switchyard+b:file:///{p}']);
  });

  it('a warm list shows the same namespaced copy of each cached item, and a single view the item itself', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const sessions = { fs: fakeSession({ 'tools/list': { tools: [{ name: 'read' }, { name: 'write' }] } }) };
    const view = viewOf({ sessions });
    const first = (await catalog.list('tools/list', view, undefined)).tools as object[];
    const second = (await catalog.list('tools/list', view, undefined)).tools as object[];
    expect(sessions.fs.calls).toEqual(['tools/list']);
    expect(names({ tools: second })).toEqual(['fs__read', 'fs__write']);
    expect(second[0]).toBe(first[0]);
    expect(second[1]).toBe(first[1]);
    // The cached upstream item is never renamed in place: a single view of the same list shows its own name.
    const single = (await catalog.list('tools/list', viewOf({ sessions, single: 'fs' }), undefined)).tools as object[];
    expect(single[0]).toEqual({ name: 'read' });
    expect(single[0]).not.toBe(first[0]);
  });

  it('a shortened name is registered again at every list, so it still routes after its server was forgotten', async () => {
    const catalog = catalogOf([manifest('fs')]);
    const long = `t${'x'.repeat(80)}`;
    const sessions = { fs: fakeSession({ 'tools/list': { tools: [{ name: long }] } }) };
    const view = viewOf({ sessions });
    const [shown] = names(await catalog.list('tools/list', view, undefined));
    expect(shown!.length).toBeLessThanOrEqual(64);
    expect(catalog.names.resolve(shown!)).toEqual({ server: 'fs', name: long });
    catalog.names.forgetServer('fs');
    expect(catalog.names.resolve(shown!)).not.toEqual({ server: 'fs', name: long });
    expect(names(await catalog.list('tools/list', view, undefined))).toEqual([shown]);
    expect(catalog.names.resolve(shown!)).toEqual({ server: 'fs', name: long });
  });

  it('has exactly one merge for each list method', () => {
    expect(Object.keys(MERGE).sort()).toEqual(['prompts/list', 'resources/list', 'resources/templates/list', 'tools/list']);
  });
});
