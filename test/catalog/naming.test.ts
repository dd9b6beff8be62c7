// Exposed names stay within ^[A-Za-z0-9_-]{1,64}$, are deterministic, unique, and route back to the original.
import { describe, expect, it } from 'vitest';
import { mayBeShortened, NameTable, shortenName } from '../../src/catalog/naming.js';

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

describe('NameTable', () => {
  it('exposes plain names as {server}__{name} and resolves them back', () => {
    const t = new NameTable();
    expect(t.expose('github', 'create_issue')).toBe('github__create_issue');
    expect(t.resolve('github__create_issue')).toEqual({ server: 'github', name: 'create_issue' });
    // Tool names may themselves contain '__': the first separator splits, since server names cannot hold '_'.
    expect(t.resolve(t.expose('fx', 'a__b'))).toEqual({ server: 'fx', name: 'a__b' });
    expect(t.resolve('noseparator')).toBeUndefined();
  });

  it('shortens long names within 64 characters, deterministically, and routes them back', () => {
    const server = 'a-very-long-server-name-for-tests';
    const long = 'x'.repeat(100);
    const t = new NameTable();
    const exposed = t.expose(server, long);
    expect(exposed).toMatch(NAME_RE);
    expect(exposed.startsWith(`${server}__`)).toBe(true);
    expect(new NameTable().expose(server, long)).toBe(exposed); // same input, same name, in any process
    expect(t.resolve(exposed)).toEqual({ server, name: long });
  });

  it('keeps distinct long names distinct even when they share a long prefix', () => {
    const t = new NameTable();
    const base = 'y'.repeat(80);
    const a = t.expose('srv', `${base}_alpha`);
    const b = t.expose('srv', `${base}_beta`);
    expect(a).not.toBe(b);
    expect(a).toMatch(NAME_RE);
    expect(b).toMatch(NAME_RE);
    expect(t.resolve(a)?.name).toBe(`${base}_alpha`);
    expect(t.resolve(b)?.name).toBe(`${base}_beta`);
  });

  it('sanitizes characters outside the pattern (dots, slashes, spaces)', () => {
    const t = new NameTable();
    for (const name of ['files.read', 'a/b', 'with space', 'ünïcödé']) {
      const exposed = t.expose('srv', name);
      expect(exposed).toMatch(NAME_RE);
      expect(t.resolve(exposed)).toEqual({ server: 'srv', name });
    }
    // Two names that sanitize alike still get different exposed names.
    expect(t.expose('srv', 'a.b')).not.toBe(t.expose('srv', 'a/b'));
  });

  it('shortens even with the longest allowed server name (32 chars)', () => {
    const server = 's'.repeat(32);
    const n = shortenName(server, 'z'.repeat(64));
    expect(n).toMatch(NAME_RE);
    expect(n.length).toBeLessThanOrEqual(64);
  });

  it('finds the upstream name behind an exposed name among the listed ones, shortened names included, in a new table', () => {
    const server = 'srv';
    const long = 'p'.repeat(80);
    const exposed = new NameTable().expose(server, long);
    const listed = new Map([[long, {}], ['short', {}]]);
    const fresh = new NameTable(); // a restarted gateway: nothing exposed yet
    expect(fresh.find(server, exposed, fresh.resolve(exposed)!.name, listed)).toBe(long);
    expect(fresh.find(server, 'srv__short', 'short', listed)).toBe('short');
    expect(fresh.find(server, 'srv__nope', 'nope', listed)).toBeUndefined();
    expect(fresh.find(server, `srv__${'q'.repeat(40)}_0badf00d`, `${'q'.repeat(40)}_0badf00d`, listed)).toBeUndefined();
  });

  it('forgets shortened names of a removed server', () => {
    const t = new NameTable();
    const exposed = t.expose('gone', 'q'.repeat(90));
    t.forgetServer('gone');
    expect(t.resolve(exposed)?.name).not.toBe('q'.repeat(90));
  });
});

describe('mayBeShortened', () => {
  it('recognizes the tail of a shortened name, and not ordinary names', () => {
    const exposed = shortenName('srv', 'w'.repeat(90));
    expect(mayBeShortened(exposed.slice('srv__'.length))).toBe(true);
    for (const n of ['echo', 'get_user', 'extra_12', 'x_1234567']) expect(mayBeShortened(n)).toBe(false);
  });
});
