/**
 * The loop closes by itself. Three nodes pull their policy as the node runtime does (test/support/
 * node-sim.ts) and post their delivery records; the worker's jobs (rescore, placement, the policy
 * autopilot) run on their timers. After the setup no operator call is made: records move a tenant's
 * score and lock, placement moves the tenant, the autopilot publishes (an urgent lock to every node at
 * once; a release to the canary first, promoted once the canary runs it and stayed healthy), and every
 * node reports it runs the result. A second scenario makes the canary degrade: the autopilot rolls it
 * back, opens an incident and pauses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJobRunner } from '../../src/worker/job-runner.js';
import { rescoreTenantsJob } from '../../src/app/jobs/rescore-tenants.js';
import { placementJob } from '../../src/app/jobs/pools-jobs.js';
import { autopilotJob } from '../../src/app/jobs/autopilot-job.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRecord } from '../support/kumo-records.js';
import { tenantEntry } from '../support/policy-text.js';
import { startNodeSim, type NodeSim } from '../support/node-sim.js';
import { eventually } from '../support/eventually.js';

let h: Harness;
let stopJobs: () => Promise<void>;
const nodes: Record<string, { id: string; token: string }> = {};
const sims: Record<string, NodeSim> = {};
let tenant: string;
let standardPool: string;

const status = async () => expectJson(await h.request('GET', '/v1/policy/status'), 200);
const post = (node: string, records: unknown[]) => h.request('POST', '/v1/events/kumo', { token: nodes[node]!.token, body: records });
const trust = async () => expectJson(await h.request('GET', `/v1/tenants/${tenant}/trust`), 200);
const placement = async () => (await h.ctx.db.selectFrom('tenant_placements').select('tier').where('tenant_id', '=', tenant).where('superseded_at', 'is', null).executeTakeFirst())?.tier;
const allRun = async (pred: (text: string) => boolean) => Object.values(sims).every((s) => s.running() !== null && pred(s.running()!));
const audit = async (action: string) => (await expectJson(await h.request('GET', `/v1/audit-log?action=${action}&limit=50`), 200)).items as { target_id: string; details: any; at: string }[];
/** the autopilot has nothing left to do: no rollout, nothing pending, every node running its version */
const settled = () =>
  eventually('the autopilot settled', async () => {
    const quiet = async () => {
      const st = await expectJson(await h.request('GET', '/v1/policy/status'), 200);
      return st.autopilot.active_rollout === null && st.autopilot.pending === null && st.nodes.every((n: any) => n.state === 'up_to_date');
    };
    // twice, further apart than the autopilot's ticks: a change committed just before the first look is seen by the second
    return (await quiet()) && (await new Promise((r) => setTimeout(r, 700)), await quiet()) ? true : undefined;
  }, 60_000);
const rolloutIn = async (id: string, state: string) =>
  eventually(`rollout ${id} ${state}`, async () => {
    const r = await expectJson(await h.request('GET', `/v1/policy/rollouts/${id}`), 200);
    return r.state === state ? r : undefined;
  }, 20_000);
const entryOf = (text: string) => text.slice(text.indexOf(`['${tenant}']`), text.indexOf('}', text.indexOf(`['${tenant}']`) + 200));

beforeAll(async () => {
  h = await startHarness({ CP_NODE_STALE_MS: '30000' });
  // fast clocks for a test; the rules are the production ones
  await expectJson(await h.request('PATCH', '/v1/settings/policy_rollout', {
    body: { debounce_seconds: 1, max_delay_seconds: 5, urgent_delay_seconds: 0, apply_timeout_seconds: 20, soak_seconds: 4, min_records: 10, baseline_hours: 1 },
  }), 200);
  await expectJson(await h.request('PATCH', '/v1/settings/placement', { body: { min_dwell_hours: 0 } }), 200);

  const std = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
  const rehab = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'rehab-1', tier: 'rehabilitation' } }), 201);
  standardPool = std.id;
  let octet = 10;
  for (const [name, canary] of [['fsn1-a', false], ['fsn1-b', true], ['hel1-a', false]] as const) {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name, region: name.slice(0, 4), public_address: `198.51.100.${octet}`, canary } }), 201);
    nodes[name] = { id: n.id, token: n.token };
    for (const pool of [std.id, rehab.id]) {
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${octet}`, node_id: n.id, rdns_name: `mta${octet}.example.net`, state: 'active' } }), 201);
      octet++;
      await expectJson(await h.request('PUT', `/v1/pools/${pool}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    }
  }
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
  tenant = t.id;
  const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/domains`, { body: { domain: 'acme.example' } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${tenant}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);

  const publicKey = h.ctx.policySigner.publicKeyRaw;
  for (const [name, n] of Object.entries(nodes)) sims[name] = startNodeSim((m, p, o) => h.request(m, p, o), { id: n.id, name, token: n.token }, publicKey, 100);
  stopJobs = startJobRunner(h.ctx, [rescoreTenantsJob(500), placementJob(300), autopilotJob(200)], 100);
}, 60_000);

afterAll(async () => {
  await stopJobs?.();
  await Promise.all(Object.values(sims).map((s) => s.stop()));
  await h?.close();
});

describe('the loop closes by itself', () => {
  it('every new node gets its first module at once, and reports it runs it', async () => {
    const s = await eventually('every node running its first module', async () => {
      const st = await status();
      return st.nodes.every((n: any) => n.state === 'up_to_date') && st.nodes.length === 3 ? st : undefined;
    }, 20_000);
    expect(s.nodes.map((n: any) => [n.node, n.current_version, n.applied_version])).toEqual([['fsn1-a', 1, 1], ['fsn1-b', 1, 1], ['hel1-a', 1, 1]]);
    expect((await audit('policy.autopilot.bootstrap')).length).toBe(3);
    // and the tenant, scored and placed by the worker, is on the nodes
    await eventually('the tenant placed and on every node', async () => ((await placement()) && (await allRun((t) => t.includes(`['${tenant}']`))) ? true : undefined), 20_000);
    await settled();
  });

  it('bounces lock the tenant; the lock is urgent and reaches every node at once, with no canary', async () => {
    const since = new Date();
    const records = [
      ...Array.from({ length: 95 }, () => kumoRecord('Delivery', { tenant })),
      ...Array.from({ length: 5 }, () => kumoRecord('Bounce', { tenant })),
    ];
    const ingest = await expectJson(await post('fsn1-a', records), 200);
    expect(ingest.rejected).toEqual([]);
    const locked = await eventually('the tenant locked', async () => ((await trust()).locked ? await trust() : undefined), 10_000);
    expect(locked.locked).toBe(true);
    await eventually('the tenant in rehabilitation', async () => ((await placement()) === 'rehabilitation' ? true : undefined), 10_000);
    await eventually('every node holding the tenant back', async () => ((await allRun((t) => /external_locked = true/.test(tenantEntry(t, tenant)))) ? true : undefined), 15_000);
    const started = (await audit('policy.rollout.start')).filter((a) => new Date(a.at) >= since);
    expect(started).toHaveLength(1);
    expect(started[0]!.details).toMatchObject({ urgent: true, canaries: [] });
    expect(started[0]!.details.reason).toContain(`tenant ${tenant} is held back from external sending`);
    const rollout = await rolloutIn(started[0]!.target_id, 'done');
    expect(rollout.nodes.every((n: any) => n.runs_it)).toBe(true);
    // placement then moves the tenant to rehabilitation: an ordinary change, rolled out after it
    await settled();
  });

  it('the tenant does what its rehabilitation says; the release goes to the canary, soaks, then to every node', async () => {
    const since = new Date();
    const t = await trust();
    const remaining: number = t.rehabilitation.clean_sends_needed;
    expect(remaining).toBeGreaterThan(0);
    // clean warming sends, as the canary's node records them, and the engagement the warming network
    // gives them at the rates the rehabilitation counted on (the trust priors, with no network data yet)
    const { trust: ts } = await expectJson(await h.request('GET', '/v1/settings'), 200);
    for (let i = 0; i < remaining; i += 500) {
      const n = Math.min(500, remaining - i);
      await expectJson(await post('fsn1-b', Array.from({ length: n }, (_v, k) => kumoRecord('Delivery', { tenant, lane: 'warming', recipient: `w${i + k}@warm.example` }))), 200);
      const events = Array.from({ length: n }, (_v, k) => i + k).flatMap((m) => [
        ...(m % 100 < ts.open_prior_pct ? [{ id: `o${m}`, tenant_id: tenant, kind: 'open', lane: 'warming', occurred_at: new Date().toISOString() }] : []),
        ...(m % 100 < ts.reply_prior_pct ? [{ id: `r${m}`, tenant_id: tenant, kind: 'reply', lane: 'warming', occurred_at: new Date().toISOString() }] : []),
      ]);
      await expectJson(await h.request('POST', '/v1/events/engagement', { body: { events } }), 200);
    }
    await eventually('the tenant unlocked', async () => ((await trust()).locked === false ? true : undefined), 15_000);
    await eventually('the tenant back in standard', async () => ((await placement()) === 'standard' ? true : undefined), 15_000);

    // the canary runs it first; the others keep holding the tenant back meanwhile
    const start = await eventually('a rollout to the canary', async () => (await audit('policy.rollout.start')).find((a) => new Date(a.at) >= since), 15_000);
    expect(start.details).toMatchObject({ urgent: false, canaries: ['fsn1-b'] });
    await eventually('the canary running the release', async () => (/external_locked = false/.test(tenantEntry(sims['fsn1-b']!.running()!, tenant)) ? true : undefined), 15_000);
    const during = await expectJson(await h.request('GET', '/v1/policy/autopilot'), 200);
    if (during.active_rollout && during.active_rollout.state !== 'promoting') {
      expect(tenantEntry(sims['fsn1-a']!.running()!, tenant)).toMatch(/external_locked = true/);
      expect(tenantEntry(sims['hel1-a']!.running()!, tenant)).toMatch(/external_locked = true/);
    }
    // the canary delivers normally while it soaks: enough records to be judged healthy
    await rolloutIn(start.target_id, 'soaking');
    await expectJson(await post('fsn1-b', Array.from({ length: 30 }, () => kumoRecord('Delivery', { tenant }))), 200);

    const done = await rolloutIn(start.target_id, 'done');
    expect(done.canary_nodes).toEqual(['fsn1-b']);
    expect(done.nodes.map((n: any) => [n.node, n.runs_it])).toEqual([['fsn1-a', true], ['fsn1-b', true], ['hel1-a', true]]);
    expect(new Date(done.canary_applied_at) <= new Date(done.promoted_at)).toBe(true);
    expect(done.health).toMatchObject({ verdict: 'healthy' });
    expect(await allRun((text) => /external_locked = false/.test(tenantEntry(text, tenant)))).toBe(true);
    // every step in the audit log, in order
    const steps = (await expectJson(await h.request('GET', `/v1/audit-log?target_id=${start.target_id}&limit=20`), 200)).items.map((a: any) => a.action).reverse();
    expect(steps).toEqual(['policy.rollout.start', 'policy.rollout.canary_applied', 'policy.rollout.promote', 'policy.rollout.done']);
    const st = await status();
    expect(st.nodes.every((n: any) => n.state === 'up_to_date')).toBe(true);
    expect(st.autopilot).toMatchObject({ paused: false, active_rollout: null });
  });

  it('a canary that degrades is rolled back automatically; the rollout stops with an incident and the autopilot pauses', async () => {
    const since = new Date();
    const before = Object.fromEntries(Object.entries(sims).map(([n, s]) => [n, s.runningSha()]));
    // a new IP joins the standard pool on every node: an ordinary change
    for (const [name, n] of Object.entries(nodes)) {
      const octet = 100 + Object.keys(nodes).indexOf(name);
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${octet}`, node_id: n.id, rdns_name: `mta${octet}.example.net`, state: 'active' } }), 201);
      await expectJson(await h.request('PUT', `/v1/pools/${standardPool}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    }
    const start = await eventually('a rollout to the canary', async () => (await audit('policy.rollout.start')).find((a) => new Date(a.at) >= since), 15_000);
    expect(start.details.canaries).toEqual(['fsn1-b']);
    await eventually('the canary running it', async () => (sims['fsn1-b']!.runningSha() !== before['fsn1-b'] ? true : undefined), 15_000);
    await rolloutIn(start.target_id, 'soaking');
    // and then its deliveries go bad: a third bounce
    await expectJson(await post('fsn1-b', [
      ...Array.from({ length: 20 }, () => kumoRecord('Delivery', { tenant })),
      ...Array.from({ length: 10 }, () => kumoRecord('Bounce', { tenant, code: 550, enhanced: [5, 7, 1], content: 'blocked', classification: 'BadReputation' })),
    ]), 200);

    const rolledBack = await rolloutIn(start.target_id, 'rolled_back');
    expect(rolledBack.outcome).toMatch(/the canaries degraded: hard-bounce rate/);
    expect(rolledBack.health).toMatchObject({ verdict: 'degraded' });
    // the canary goes back to what it ran; the others never got the change
    await eventually('the canary back on its previous module', async () => (sims['fsn1-b']!.runningSha() === before['fsn1-b'] ? true : undefined), 15_000);
    expect(sims['fsn1-a']!.runningSha()).toBe(before['fsn1-a']);
    expect(sims['hel1-a']!.runningSha()).toBe(before['hel1-a']);
    const incidents = await h.ctx.db.selectFrom('reputation_incidents').selectAll().where('kind', '=', 'policy_rollout').execute();
    expect(incidents).toHaveLength(1);
    expect(String(incidents[0]!.rollout_id)).toBe(start.target_id);
    const ap = await expectJson(await h.request('GET', '/v1/policy/autopilot'), 200);
    expect(ap).toMatchObject({ paused: true, active_rollout: null });
    expect(ap.paused_reason).toContain(`rollout ${start.target_id} was rolled back`);
    // paused: the same state is not tried again by itself
    await new Promise((r) => setTimeout(r, 1500));
    expect((await audit('policy.rollout.start')).filter((a) => new Date(a.at) >= since)).toHaveLength(1);
    const st = await status();
    expect(st.nodes.find((n: any) => n.node === 'fsn1-b')).toMatchObject({ state: 'up_to_date' });
  });
});
