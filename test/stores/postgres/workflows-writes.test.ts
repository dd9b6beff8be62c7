// What a workflow costs the shared store: a fresh workflow's row goes in with its first step (one statement), a row
// with no step is still written, and a plain active → done is kept off the bus and out of the catch-up read, while
// every change a guard or another replica needs is still announced.
import { describe, expect, it, vi } from 'vitest';
import type { Caller } from '../../../src/gateway/types.js';
import type { ControlBus } from '../../../src/stores/bus.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { PgWorkflows } from '../../../src/stores/postgres/workflows.js';
import type { Postgres } from '../../../src/stores/postgres/pool.js';
import { storeDir } from '../factories.js';
import { pgFor, pgUnavailable } from './databases.js';
import { closedAfterEach, DeafBus } from './replicas.js';

if (pgUnavailable) console.log(`skipping workflow write tests: ${pgUnavailable}`);

const root: Caller = { agentId: 'root', principal: 'root', user: 'ann', chain: ['root'], via: 'apikey' };
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

const keep = closedAfterEach();

interface Row {
  agent: string;
  user: string | null;
  kind: string;
  traceparent: string | null;
  step_count: number;
  state: string;
  changed_at: string | null;
}

const rowOf = async (db: Postgres, id: string): Promise<Row | undefined> =>
  (await db.query<Row>('SELECT agent, "user", kind, traceparent, step_count, state, changed_at FROM workflows WHERE id = $1', [id])).rows[0];

/** Statements sent to the store, on the pool and on its relaxed-commit pool alike. */
function statements(db: Postgres): { count(): number; texts(): string[]; restore(): void } {
  const query = vi.spyOn(db, 'query');
  const relaxed = vi.spyOn(db, 'queryRelaxed');
  const all = () => [...query.mock.calls, ...relaxed.mock.calls].map(([sql]) => (typeof sql === 'string' ? sql : sql.text).trimStart());
  return {
    count: () => all().length,
    texts: all,
    restore: () => {
      query.mockRestore();
      relaxed.mockRestore();
    },
  };
}

/** Every workflow-state message published on a bus. */
function recorded(bus: ControlBus): unknown[] {
  const seen: unknown[] = [];
  bus.subscribe('workflow-state', (m) => seen.push(m.data));
  return seen;
}

describe.skipIf(pgUnavailable)('workflow writes on PostgreSQL', () => {
  it("a fresh workflow's first step inserts its whole row in one statement, and later steps count on", async () => {
    const db = await pgFor(storeDir());
    const warnings: unknown[] = [];
    const w = keep(await PgWorkflows.open({ db, bus: new DeafBus(), log: { warn: (o: unknown) => warnings.push(o), error: () => {} } }));
    const query = statements(db);
    const id = w.begin({ caller: root, kind: 'a2a', traceparent: TRACE });
    expect(query.count()).toBe(0); // begin wrote nothing yet
    expect(await w.nextStep(id)).toBe(1);
    expect(query.count()).toBe(1);
    expect(await w.nextStep(id)).toBe(2);
    query.restore();
    expect(await rowOf(db, id)).toMatchObject({ agent: 'root', user: 'ann', kind: 'a2a', traceparent: TRACE, step_count: 2, state: 'active' });
    expect(warnings).toEqual([]); // not the "never begun" path
  });

  it('a join on this replica before the first step writes the row of the one who began it', async () => {
    const db = await pgFor(storeDir());
    const w = keep(await PgWorkflows.open({ db, bus: new DeafBus() }));
    const id = w.begin({ caller: root, kind: 'mcp' });
    w.begin({ caller: { agentId: 'child', principal: 'child', chain: ['root', 'child'], via: 'delegated' }, kind: 'mcp', id });
    expect(await w.nextStep(id)).toBe(1);
    expect(await w.agentOf(id)).toBe('root');
    expect(await rowOf(db, id)).toMatchObject({ agent: 'root', step_count: 1, state: 'active' });
  });

  it('a join of a workflow another replica runs or paused is one statement, and its state stands', async () => {
    const dir = storeDir();
    const a = keep(await PgWorkflows.open({ db: await pgFor(dir), bus: new DeafBus(), catchUpMs: 60_000 }));
    const db = await pgFor(dir);
    const b = keep(await PgWorkflows.open({ db, bus: new DeafBus(), catchUpMs: 60_000 }));
    const running = a.begin({ caller: root, kind: 'mcp' });
    const paused = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(running);
    await a.setState(paused, 'paused');
    const query = statements(db);
    b.begin({ caller: root, kind: 'mcp', id: running });
    b.begin({ caller: root, kind: 'mcp', id: paused });
    await b.settled();
    expect(query.count()).toBe(2);
    query.restore();
    expect([b.state(running), b.state(paused)]).toEqual(['active', 'paused']);
  });

  it('steps of concurrent calls share one statement: fresh rows, a join with its first step, increments and dones', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const published = recorded(bus);
    const other = keep(await PgWorkflows.open({ db: await pgFor(dir), bus: new DeafBus(), catchUpMs: 60_000 }));
    const db = await pgFor(dir);
    const w = keep(await PgWorkflows.open({ db, bus, catchUpMs: 60_000 }));
    // A workflow another replica ran and finished, which a client joins here: its first step here rejoins it.
    const elsewhere = other.begin({ caller: root, kind: 'mcp' });
    expect(await other.nextStep(elsewhere)).toBe(1);
    await other.setState(elsewhere, 'done', 'request answered');
    const running = w.begin({ caller: root, kind: 'mcp' });
    expect(await w.nextStep(running)).toBe(1);
    const finishing = w.begin({ caller: root, kind: 'mcp' });
    expect(await w.nextStep(finishing)).toBe(1);
    const heard: string[] = [];
    w.onStateChange((id, state) => heard.push(`${id === elsewhere ? 'elsewhere' : id}:${state}`));
    const query = statements(db);
    const fresh = [0, 1, 2].map(() => w.begin({ caller: root, kind: 'a2a', traceparent: TRACE }));
    const child: Caller = { agentId: 'child', principal: 'child', chain: ['root', 'child'], via: 'delegated' };
    expect(w.begin({ caller: child, kind: 'mcp', id: elsewhere })).toBe(elsewhere);
    const done = w.setState(finishing, 'done', 'request answered');
    const steps = await Promise.all([...fresh.map((id) => w.nextStep(id)), w.nextStep(elsewhere), w.nextStep(running), w.nextStep(running)]);
    await done;
    expect(query.count()).toBe(1);
    query.restore();
    expect(steps.slice(0, 4)).toEqual([1, 1, 1, 2]);
    expect(steps.slice(4).sort()).toEqual([2, 3]);
    for (const id of fresh) expect(await rowOf(db, id)).toMatchObject({ agent: 'root', kind: 'a2a', traceparent: TRACE, step_count: 1, state: 'active' });
    expect(await rowOf(db, elsewhere)).toMatchObject({ agent: 'root', step_count: 2, state: 'active' }); // the starter's row, rejoined
    expect(await rowOf(db, finishing)).toMatchObject({ state: 'done', changed_at: null });
    expect(w.state(elsewhere)).toBe('active');
    expect(heard).toEqual(expect.arrayContaining(['elsewhere:active', `${finishing}:done`]));
    expect(published).toMatchObject([{ id: elsewhere, state: 'active', why: 'rejoined' }]); // a rejoin is announced
    await other.catchUp();
    expect(other.state(elsewhere)).toBe('active');
  });

  it('a group of fresh steps and dones sends only those parts; a group with a join sends the whole statement', async () => {
    const db = await pgFor(storeDir());
    const w = keep(await PgWorkflows.open({ db, bus: new DeafBus(), catchUpMs: 60_000 }));
    const query = statements(db);
    const [a, b] = [0, 1].map(() => w.begin({ caller: root, kind: 'mcp' }));
    expect(await Promise.all([w.nextStep(a), w.nextStep(b)])).toEqual([1, 1]);
    await Promise.all([w.setState(a, 'done', 'request answered'), w.settled()]);
    const c = w.begin({ caller: root, kind: 'mcp' });
    const doneB = w.setState(b, 'done', 'request answered');
    expect(await w.nextStep(c)).toBe(1);
    await doneB;
    w.begin({ caller: root, kind: 'mcp', id: a }); // a join: it rejoins the done row
    expect(await w.nextStep(a)).toBe(2);
    const texts = query.texts();
    query.restore();
    expect(texts).toHaveLength(4);
    const [steps, dones, both, joined] = texts as [string, string, string, string];
    expect(steps).toMatch(/^WITH stepped AS \(/);
    expect(dones).toMatch(/^WITH fin AS \(/);
    for (const sql of [steps, dones]) expect(sql).not.toMatch(/was AS|joined AS/);
    expect(dones).not.toMatch(/INSERT/);
    expect(both).toMatch(/^WITH fin AS \(/);
    expect(both).toMatch(/stepped AS \(/);
    expect(joined).toMatch(/^WITH was AS \(.*joined AS \(/s);
    expect(await rowOf(db, a)).toMatchObject({ state: 'active', step_count: 2 });
    expect(await rowOf(db, b)).toMatchObject({ state: 'done', step_count: 1 });
    expect(await rowOf(db, c)).toMatchObject({ state: 'active', step_count: 1 });
  });

  it('a join of a running workflow and its first step are one statement that only counts', async () => {
    const dir = storeDir();
    const a = keep(await PgWorkflows.open({ db: await pgFor(dir), bus: new DeafBus(), catchUpMs: 60_000 }));
    const db = await pgFor(dir);
    const b = keep(await PgWorkflows.open({ db, bus: new DeafBus(), catchUpMs: 60_000 }));
    const id = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(id);
    await a.setState(id, 'paused', 'admin');
    const query = statements(db);
    b.begin({ caller: root, kind: 'mcp', id });
    expect(await b.nextStep(id)).toBe(2);
    expect(query.count()).toBe(1);
    query.restore();
    expect(b.state(id)).toBe('paused'); // the state that stands
    expect(await rowOf(db, id)).toMatchObject({ state: 'paused', step_count: 2 });
  });

  it('workflow groups commit without waiting for their WAL flush; everything else waits as the server says', async () => {
    const db = await pgFor(storeDir());
    // The test servers may run with synchronous_commit off already: the pool keeps the server's own setting.
    const setting = { name: 'test-show-synchronous-commit', text: "SELECT current_setting('synchronous_commit') AS v, reset_val AS server FROM pg_settings WHERE name = $1" };
    const relaxed = await db.queryRelaxed<{ v: string; server: string }>(setting, ['synchronous_commit']);
    const plain = await db.query<{ v: string; server: string }>(setting, ['synchronous_commit']);
    expect(relaxed.rows[0]!.v).toBe('off');
    expect(plain.rows[0]!.v).toBe((await db.query<{ v: string }>("SELECT setting AS v FROM pg_settings WHERE name = 'synchronous_commit'")).rows[0]!.v);
  });

  it('two first steps of one fresh workflow at once get 1 and 2, and the row keeps its agent', async () => {
    const db = await pgFor(storeDir());
    const w = keep(await PgWorkflows.open({ db, bus: new DeafBus() }));
    const id = w.begin({ caller: root, kind: 'mcp' });
    const steps = await Promise.all([w.nextStep(id), w.nextStep(id), w.nextStep(id)]);
    expect(steps.sort()).toEqual([1, 2, 3]);
    expect(await rowOf(db, id)).toMatchObject({ agent: 'root', step_count: 3 });
  });

  it('a fresh workflow with no step is written on its own: at once when asked about, else within a second', async () => {
    const db = await pgFor(storeDir());
    const w = keep(await PgWorkflows.open({ db, bus: new DeafBus() }));
    const asked = w.begin({ caller: root, kind: 'mcp' });
    expect(await w.agentOf(asked)).toBe('root');
    const traced = w.begin({ caller: root, kind: 'model', traceparent: TRACE });
    expect(await w.byTraceId(TRACE.slice(3, 35))).toBe(traced);
    const idle = w.begin({ caller: root, kind: 'mcp' });
    const t0 = performance.now();
    await vi.waitFor(async () => expect(await rowOf(db, idle)).toMatchObject({ agent: 'root', step_count: 0 }), { timeout: 2000, interval: 25 });
    expect(performance.now() - t0).toBeLessThan(1000);
    const stopped = w.begin({ caller: root, kind: 'mcp' });
    await w.setState(stopped, 'paused', 'before any step');
    expect(await rowOf(db, stopped)).toMatchObject({ state: 'paused', step_count: 0 });
    const closing = w.begin({ caller: root, kind: 'mcp' });
    await w.settled();
    expect(await rowOf(db, closing)).toMatchObject({ agent: 'root' });
  });

  it('active → done is not announced nor re-read elsewhere; paused → done, a kill of a done one and a rejoin are', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const published = recorded(bus);
    const a = keep(await PgWorkflows.open({ db: await pgFor(dir), bus }));
    const b = keep(await PgWorkflows.open({ db: await pgFor(dir), bus: new DeafBus(), catchUpMs: 60_000 }));
    const finished = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(finished);
    await a.setState(finished, 'done', 'request answered');
    expect(a.state(finished)).toBe('done');
    expect(published).toEqual([]);
    await b.catchUp();
    expect(b.state(finished)).toBeUndefined(); // b never knew it; nothing it guards changed

    const paused = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(paused);
    await a.setState(paused, 'paused');
    await b.catchUp();
    expect(b.state(paused)).toBe('paused');
    await a.setState(paused, 'done');
    await b.catchUp();
    expect(b.state(paused)).toBe('done'); // b would refuse it as paused: this one must travel
    expect(published).toMatchObject([{ id: paused, state: 'paused' }, { id: paused, state: 'done' }]);

    // b kills the quietly finished one, and a rejoin on b makes the other one active again: both announced.
    await b.setState(finished, 'killed', 'admin');
    await a.catchUp();
    expect(a.state(finished)).toBe('killed');
    b.begin({ caller: root, kind: 'mcp', id: paused });
    await b.settled();
    await a.catchUp();
    expect(a.state(paused)).toBe('active');
  });

  it('dones finishing together are one UPDATE; one paused or killed elsewhere meanwhile is finished or refused as alone', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const published = recorded(bus);
    const db = await pgFor(dir);
    const a = keep(await PgWorkflows.open({ db, bus, catchUpMs: 60_000 }));
    const b = keep(await PgWorkflows.open({ db: await pgFor(dir), bus: new DeafBus(), catchUpMs: 60_000 }));
    const ids = [0, 1, 2, 3].map(() => a.begin({ caller: root, kind: 'mcp' }));
    for (const id of ids) await a.nextStep(id);
    const [plain1, plain2, pausedThere, killedThere] = ids as [string, string, string, string];
    await b.setState(pausedThere, 'paused', 'admin on b'); // a does not hear it: b's bus is deaf
    await b.setState(killedThere, 'killed', 'admin on b');
    const query = statements(db);
    const results = await Promise.allSettled(ids.map((id) => a.setState(id, 'done', 'request answered')));
    const texts = query.texts();
    const updates = texts.filter((sql) => sql.startsWith('UPDATE') || sql.includes('UPDATE workflows w SET state = \'done\''));
    query.restore();
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect(String((results[3] as PromiseRejectedResult).reason)).toMatch(/is killed and cannot become done/);
    expect(updates).toHaveLength(3); // the group, then one each for the two that were no longer active
    expect(ids.map((id) => a.state(id))).toEqual(['done', 'done', 'done', 'killed']);
    for (const id of [plain1, plain2]) expect(await rowOf(db, id)).toMatchObject({ state: 'done', changed_at: null });
    expect(published).toMatchObject([{ id: pausedThere, state: 'done' }]); // b guards it as paused: it must hear
  });

  it('a step or state change after a queued done waits for it, and close writes what is queued', async () => {
    const dir = storeDir();
    const db = await pgFor(dir);
    const a = await PgWorkflows.open({ db, bus: new DeafBus(), catchUpMs: 60_000 });
    const id = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(id);
    void a.setState(id, 'done');
    await a.setState(id, 'killed', 'admin'); // done → killed is legal only once the done is written
    expect(await rowOf(db, id)).toMatchObject({ state: 'killed' });
    // A client joining the workflow its last call finished, on this replica, before the done is written: it rejoins.
    const again = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(again);
    const heard: string[] = [];
    a.onStateChange((wf, state) => wf === again && heard.push(state));
    void a.setState(again, 'done');
    a.begin({ caller: root, kind: 'mcp', id: again });
    await a.settled();
    expect(a.state(again)).toBe('active');
    expect(await rowOf(db, again)).toMatchObject({ state: 'active' });
    expect(heard).toEqual(['done', 'active']);
    const last = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(last);
    void a.setState(last, 'done');
    await a.close();
    expect(await rowOf(db, last)).toMatchObject({ state: 'done' });
  });
});
