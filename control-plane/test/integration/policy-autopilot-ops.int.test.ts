/**
 * The autopilot under an operator's hands, tick by tick on a test clock: debounce, a canary that
 * refuses its module or never applies it (rolled back, with an incident, paused), pause and resume,
 * skip, force, and a hand publish refused while a rollout runs. Nodes are pulls made by the test, with
 * the report headers the node runtime sends.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autopilotTick } from '../../src/app/policy/autopilot.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
let clock = new Date('2026-12-01T10:00:00Z');
const advance = (s: number) => (clock = new Date(clock.getTime() + s * 1000));
const nodes: Record<'a' | 'b', { id: string; token: string; runs: string | null }> = {} as never;
let pool: string;
let octet = 50;

const tick = () => h.ctx.db.transaction().execute((tx) => autopilotTick(h.ctx, tx));
const autopilot = async () => expectJson(await h.request('GET', '/v1/policy/autopilot'), 200);
const sha = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');

/** One pull by the node; it installs what it gets unless told to refuse, and reports what it runs. */
async function pull(name: 'a' | 'b', opts: { refuse?: string } = {}): Promise<void> {
  const n = nodes[name];
  const headers: Record<string, string> = { 'x-kcp-running-sha256': n.runs ? sha(n.runs) : 'none', 'x-kcp-running-copy': n.runs ? 'generated' : 'none' };
  if (n.runs) headers['if-none-match'] = `"${sha(n.runs)}"`;
  const res = await h.request('GET', `/v1/nodes/${n.id}/policy`, { token: n.token, headers });
  if (res.status !== 200) return void (await res.arrayBuffer());
  const text = await res.text();
  if (opts.refuse) {
    // the next pull says why
    await h.request('GET', `/v1/nodes/${n.id}/policy`, { token: n.token, headers: { ...headers, 'x-kcp-install-error': opts.refuse } }).then((r) => r.arrayBuffer());
    return;
  }
  n.runs = text;
  await h.request('GET', `/v1/nodes/${n.id}/policy`, { token: n.token, headers: { 'x-kcp-running-sha256': sha(text), 'x-kcp-running-copy': 'generated', 'if-none-match': `"${sha(text)}"` } }).then((r) => r.arrayBuffer());
}
const pullBoth = async () => {
  await pull('a');
  await pull('b');
};

/** An ordinary change: one more IP in the pool on each node. */
async function change() {
  for (const n of Object.values(nodes)) {
    const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${octet}`, node_id: n.id, rdns_name: `mta${octet}.example.net`, state: 'active' } }), 201);
    octet++;
    await expectJson(await h.request('PUT', `/v1/pools/${pool}/members/${ip.id}`, { body: { weight: 100 } }), 200);
  }
}

beforeAll(async () => {
  h = await startHarness({ CP_NODE_STALE_MS: '3600000' }, { now: () => clock });
  await expectJson(await h.request('PATCH', '/v1/settings/policy_rollout', { body: { debounce_seconds: 10, max_delay_seconds: 60, urgent_delay_seconds: 0, apply_timeout_seconds: 60, soak_seconds: 30, min_records: 10 } }), 200);
  pool = (await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201)).id;
  for (const [name, canary, addr] of [['a', true, '198.51.100.1'], ['b', false, '198.51.100.2']] as const) {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: `node-${name}`, region: 'fsn1', public_address: addr, canary } }), 201);
    nodes[name] = { id: n.id, token: n.token, runs: null };
  }
  await change();
});
afterAll(async () => h?.close());

describe('the autopilot for operators', () => {
  it('gives every new node its first module at once, then has nothing to do', async () => {
    const r = await tick();
    expect(r.bootstrapped).toEqual(['node-a', 'node-b']);
    await pullBoth();
    expect(await tick()).toMatchObject({ step: 'idle' });
  });

  it('debounces a change, then rolls it out to the canary; a hand publish meanwhile is refused', async () => {
    await change();
    expect(await tick()).toMatchObject({ step: 'track' });
    expect((await autopilot()).pending).toMatchObject({ since: clock.toISOString() });
    advance(5);
    expect(await tick()).toMatchObject({ step: 'wait' });
    advance(5);
    const started = await tick();
    expect(started).toMatchObject({ step: 'start' });
    const ap = await autopilot();
    expect(ap.active_rollout).toMatchObject({ state: 'canary', canary_nodes: ['node-a'], urgent: false });
    expect(ap.pending).toBeNull();
    const publish = await expectJson(await h.request('POST', '/v1/policy/publish', { body: {} }), 409);
    expect(publish.detail).toContain(`rollout ${started.rollout} is in progress`);
  });

  it('a canary that refuses the module is rolled back at once, with an incident, and the autopilot pauses', async () => {
    const before = nodes.a.runs;
    await pull('a', { refuse: 'module refused: tenant x: bad tier' });
    const r = await tick();
    expect(r).toMatchObject({ step: 'rollback' });
    expect(r.why).toContain('canary node-a refused the new version: module refused: tenant x: bad tier');
    const ap = await autopilot();
    expect(ap).toMatchObject({ paused: true, active_rollout: null });
    const incident = await h.ctx.db.selectFrom('reputation_incidents').selectAll().where('kind', '=', 'policy_rollout').executeTakeFirstOrThrow();
    expect(String(incident.rollout_id)).toBe(r.rollout);
    expect(incident.actions).toEqual([{ action: 'rolled_back', versions: [{ node: 'node-a', version: 2 }] }, { action: 'paused_autopilot' }]);
    // the canary is served what it ran before, and runs it
    await pull('a');
    expect(nodes.a.runs).toBe(before);
    // paused: nothing new starts
    advance(100);
    expect((await tick()).step).not.toBe('start');
  });

  it('resumed, the failed state is not tried again by itself; force sends it to every node now, without a canary', async () => {
    await expectJson(await h.request('POST', '/v1/policy/autopilot/resume'), 200);
    advance(100);
    expect(await tick()).toMatchObject({ step: 'idle', why: expect.stringContaining('skipped') });
    const forced = await expectJson(await h.request('POST', '/v1/policy/autopilot/force'), 200);
    expect(forced.active_rollout).toMatchObject({ state: 'promoting', canary_nodes: [], reason: 'forced by an operator' });
    await pullBoth();
    expect(await tick()).toMatchObject({ step: 'finish' });
    const st = await expectJson(await h.request('GET', '/v1/policy/status'), 200);
    expect(st.nodes.map((n: any) => n.state)).toEqual(['up_to_date', 'up_to_date']);
  });

  it('skip stops a rollout and puts the canary back; force during the soak promotes it', async () => {
    await change();
    await tick();
    advance(11);
    expect(await tick()).toMatchObject({ step: 'start' });
    const canaryBefore = nodes.a.runs;
    await pull('a');
    expect(nodes.a.runs).not.toBe(canaryBefore);
    const skipped = await expectJson(await h.request('POST', '/v1/policy/autopilot/skip'), 200);
    expect(skipped.active_rollout).toBeNull();
    await pull('a');
    expect(nodes.a.runs).toBe(canaryBefore);
    advance(100);
    expect(await tick()).toMatchObject({ step: 'idle' });

    await change();
    await tick();
    advance(11);
    const r = await tick();
    await pull('a');
    expect(await tick()).toMatchObject({ step: 'canary_applied' });
    expect((await autopilot()).active_rollout.state).toBe('soaking');
    const forced = await expectJson(await h.request('POST', '/v1/policy/autopilot/force'), 200);
    expect(forced.active_rollout).toMatchObject({ id: r.rollout, state: 'promoting' });
    await pullBoth();
    expect(await tick()).toMatchObject({ step: 'finish' });
    const steps = (await expectJson(await h.request('GET', `/v1/audit-log?target_id=${r.rollout}&limit=20`), 200)).items.map((a: any) => [a.action, a.actor_kind ?? a.actor?.kind ?? null]);
    expect(steps.map((s: any[]) => s[0]).reverse()).toEqual(['policy.rollout.start', 'policy.rollout.canary_applied', 'policy.rollout.promote', 'policy.rollout.done']);
  });

  it('a canary that never reports running the new version is rolled back after the apply timeout', async () => {
    await change();
    await tick();
    advance(11);
    const r = await tick();
    expect(r.step).toBe('start');
    advance(59);
    expect(await tick()).toMatchObject({ step: 'wait' });
    advance(1);
    const rb = await tick();
    expect(rb).toMatchObject({ step: 'rollback', rollout: r.rollout });
    expect(rb.why).toBe('canary node-a did not report running the new version within 60 s');
    const list = await expectJson(await h.request('GET', '/v1/policy/rollouts?limit=2'), 200);
    expect(list.items[0]).toMatchObject({ id: r.rollout, state: 'rolled_back' });
    expect(list.next_cursor).toBe(list.items[1].id);
    const older = await expectJson(await h.request('GET', `/v1/policy/rollouts?limit=50&cursor=${list.next_cursor}`), 200);
    expect(older.items.every((x: any) => Number(x.id) < Number(list.next_cursor))).toBe(true);
    expect((await expectJson(await h.request('GET', '/v1/policy/rollouts/999999'), 404)).code).toBe('NOT_FOUND');
  });

  it('pause and resume are audited, and need the admin scope', async () => {
    const reader = await h.tokenWith(['read']);
    expect((await h.request('POST', '/v1/policy/autopilot/resume', { token: reader })).status).toBe(403);
    await expectJson(await h.request('POST', '/v1/policy/autopilot/resume'), 200);
    const paused = await expectJson(await h.request('POST', '/v1/policy/autopilot/pause', { body: { reason: 'maintenance window' } }), 200);
    expect(paused).toMatchObject({ paused: true, paused_reason: 'maintenance window' });
    expect((await expectJson(await h.request('POST', '/v1/policy/autopilot/pause', { body: {} }), 400)).code).toBe('VALIDATION_FAILED');
    const log = await expectJson(await h.request('GET', '/v1/audit-log?action=policy.autopilot.pause'), 200);
    expect(log.items[0].details).toEqual({ reason: 'maintenance window' });
  });
});

describe('rendering the fleet', () => {
  it('renders again only when the state changed, and then every node', async () => {
    const { FleetRenderCache, renderFleet } = await import('../../src/app/policy/fleet-render.js');
    const cache = new FleetRenderCache();
    let renders = 0;
    const lookup = cache.lookup.bind(cache);
    cache.lookup = (sha, key, render) => lookup(sha, key, () => (renders++, render()));
    const first = await renderFleet(h.ctx.db, h.ctx.config.policy.dkimKeyDir, null, cache);
    expect(renders).toBe(2);
    const again = await renderFleet(h.ctx.db, h.ctx.config.policy.dkimKeyDir, null, cache);
    expect(renders).toBe(2);
    expect(again.render.sha).toBe(first.render.sha);
    await change();
    const changed = await renderFleet(h.ctx.db, h.ctx.config.policy.dkimKeyDir, null, cache);
    expect(renders).toBe(4);
    expect(changed.render.sha).not.toBe(first.render.sha);
    // what a fresh render says, byte for byte
    const fresh = await renderFleet(h.ctx.db, h.ctx.config.policy.dkimKeyDir);
    expect(changed.nodes.map((n) => n.contentSha256)).toEqual(fresh.nodes.map((n) => n.contentSha256));
  });
});
