/**
 * The loop closes by itself with a real kumod as the canary node: nobody publishes. The worker's jobs
 * (rescore, placement, the autopilot) run on their timers; kumod pulls, installs and reports what it
 * runs; a second node (the protocol stand-in of test/support/node-sim.ts) is the rest of the fleet.
 * Mail goes tenant -> gateway -> kumod -> an SMTP server standing for the internet, and kumod's own
 * log hook brings the records back:
 *   1. both nodes get their first module from the autopilot;
 *   2. kumod's bounces lock the tenant: an urgent rollout puts the lock on both nodes at once;
 *   3. the tenant rehabilitates: the release goes to kumod first, soaks on kumod's real deliveries,
 *      then reaches the other node;
 *   4. a change whose canary degrades (kumod's deliveries start deferring) is rolled back: kumod is
 *      served its previous module again, installs it and says so; an incident is open.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import { startJobRunner } from '../../src/worker/job-runner.js';
import { rescoreTenantsJob } from '../../src/app/jobs/rescore-tenants.js';
import { placementJob } from '../../src/app/jobs/pools-jobs.js';
import { autopilotJob } from '../../src/app/jobs/autopilot-job.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRecord } from '../support/kumo-records.js';
import { kumoRelease, sayWhySkipped } from '../support/kumo-release.js';
import { startTestGateway, submit } from '../support/mail-flow.js';
import { loopbackNodeSettings, stageNode, type StagedNode } from '../support/node-dir.js';
import { tenantEntry } from '../support/policy-text.js';
import { startNodeSim, type NodeSim } from '../support/node-sim.js';
import { freePortForTest } from '../support/ports.js';
import { serveApi } from '../support/serve-api.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { eventually, startKumod, type Kumod } from './kumod-process.js';

const release = kumoRelease();
if (!release.kumod || !release.shareDir) {
  sayWhySkipped('the policy autopilot with a real kumod as the canary', 'KUMOD_BIN names no kumod with its share directory (scripts/test.sh sets it from ../shared/kumomta when that is there)');
}

describe.skipIf(!release.kumod || !release.shareDir)(`the loop closes by itself, with kumod ${release.version ?? ''} as the canary`, () => {
  let h: Harness;
  let closeApi: () => Promise<void>;
  let dns: DnsServer;
  let internet: SmtpSink;
  let node: StagedNode;
  let kumod: Kumod;
  let sim: NodeSim;
  let gateway: SubmissionGateway;
  let stopJobs: () => Promise<void>;
  let tenant: string;
  let creds: { username: string; password: string };
  let kumodNode: { id: string; token: string };
  let simNode: { id: string; token: string };
  let standardPool: string;
  let deferAll = false;
  const dkimDir = mkdtempSync(path.join(tmpdir(), 'kcp-dkim-'));

  const installed = () => readFileSync(path.join(node.cpDir, 'generated.lua'), 'utf8');
  const nodeStatus = async (id: string) => (await expectJson(await h.request('GET', '/v1/policy/status'), 200)).nodes.find((n: any) => n.node_id === id);
  const audit = async (action: string) => (await expectJson(await h.request('GET', `/v1/audit-log?action=${action}&limit=50`), 200)).items as { target_id: string; details: any; at: string }[];
  const rolloutIn = (id: string, state: string, timeoutMs = 60_000) =>
    eventually(`rollout ${id} ${state}`, async () => {
      const r = await expectJson(await h.request('GET', `/v1/policy/rollouts/${id}`), 200);
      return r.state === state ? r : undefined;
    }, timeoutMs);
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
  const startedSince = (since: Date) => eventually('a rollout', async () => (await audit('policy.rollout.start')).find((a) => new Date(a.at) >= since), 60_000);
  const send = (to: string) => submit(gateway.submissionPort, creds, { from: 'Acme <sales@acme.test>', to, subject: 'autopilot', text: 'hello' });
  const deliveriesRecorded = async (n: number, since: Date) =>
    eventually(`${n} records from kumod`, async () => {
      const r = await h.ctx.db.selectFrom('delivery_events').select((eb) => eb.fn.countAll<string>().as('n')).where('node_id', '=', kumodNode.id).where('outcome', '!=', 'received').where('ingested_at', '>=', since).executeTakeFirstOrThrow();
      return Number(r.n) >= n ? true : undefined;
    }, 60_000);

  beforeAll(async () => {
    h = await startHarness({ CP_POLICY_DKIM_KEY_DIR: dkimDir, CP_NODE_STALE_MS: '60000' });
    const api = await serveApi(h.app);
    closeApi = api.close;
    internet = await startSmtpSink();
    internet.behaviour.refuseRecipient = (a) =>
      a.startsWith('unknown') ? { code: 550, message: '5.1.1 no such user here' } : deferAll ? { code: 451, message: '4.7.0 try again later' } : null;
    dns = await startDnsServer({ mx: { 'inbox.test': [{ exchange: 'mx.inbox.test' }] }, a: { 'mx.inbox.test': ['127.0.0.1'] } });

    await expectJson(await h.request('PATCH', '/v1/settings/policy_rollout', {
      body: { debounce_seconds: 1, max_delay_seconds: 5, urgent_delay_seconds: 0, apply_timeout_seconds: 60, soak_seconds: 15, min_records: 10, baseline_hours: 1 },
    }), 200);
    await expectJson(await h.request('PATCH', '/v1/settings/placement', { body: { min_dwell_hours: 0 } }), 200);

    // the fleet: kumod (the canary) holds the standard pool's IPs; the other node only rehabilitation
    // IPs, so the gateway relays the tenant's external mail to kumod alone
    standardPool = (await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201)).id;
    const rehabPool = (await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'rehab-1', tier: 'rehabilitation' } }), 201)).id;
    const [relayPort, inboundPort, httpPort] = [await freePortForTest(), await freePortForTest(), await freePortForTest()];
    kumodNode = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'kumod-1', region: 'fsn1', public_address: '127.0.0.1', relay_host: '127.0.0.1', relay_port: relayPort, canary: true } }), 201);
    simNode = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'sim-1', region: 'hel1', public_address: '198.51.100.7' } }), 201);
    for (const [addr, nodeId, pool] of [['127.0.0.2', kumodNode.id, standardPool], ['127.0.0.3', kumodNode.id, rehabPool], ['198.51.100.8', simNode.id, rehabPool]] as const) {
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: addr, node_id: nodeId, rdns_name: `mta-${addr.replaceAll('.', '-')}.kumod.test`, state: 'active' } }), 201);
      await expectJson(await h.request('PUT', `/v1/pools/${pool}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    }
    tenant = (await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201)).id;
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/domains`, { body: { domain: 'acme.test' } }), 201);
    await expectJson(await h.request('PATCH', `/v1/tenants/${tenant}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
    creds = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/smtp-credentials`, { body: {} }), 201);

    const key = await expectJson(await h.request('GET', '/v1/policy/public-key'), 200);
    node = stageNode((root) =>
      loopbackNodeSettings(root, {
        controlPlaneUrl: api.url,
        node: kumodNode,
        publicKeyHex: key.public_key_hex,
        redisUrl: h.ctx.config.redisUrl,
        ports: { relay: relayPort, inbound: inboundPort, http: httpPort },
        dkimDir,
        shareDir: release.shareDir!,
        dnsServer: dns.address,
        internetPort: internet.port,
      }),
    );
    kumod = await startKumod(node, relayPort);
    sim = startNodeSim((m, p, o) => h.request(m, p, o), { id: simNode.id, name: 'sim-1', token: simNode.token }, h.ctx.policySigner.publicKeyRaw, 200);

    gateway = await startTestGateway(h);
    stopJobs = startJobRunner(h.ctx, [rescoreTenantsJob(1000), placementJob(500), autopilotJob(250)], 100);
  }, 120_000);

  afterAll(async () => {
    await stopJobs?.();
    await sim?.stop();
    await gateway?.close();
    await kumod?.stop();
    await closeApi?.().catch(() => undefined);
    await internet?.close();
    await dns?.close();
    await h?.close();
  });

  it('both nodes get their first module from the autopilot, and kumod reports it runs it', async () => {
    const s = await eventually('kumod running its first module', async () => {
      const st = await nodeStatus(kumodNode.id);
      return st?.state === 'up_to_date' ? st : undefined;
    }, 60_000);
    expect(s).toMatchObject({ current_version: 1, applied_version: 1, running_copy: 'generated' });
    expect(installed()).toContain(`model-sha256:`);
    await eventually('the tenant on kumod, standard', async () => (/tier = 'standard'/.test(tenantEntry(installed(), tenant)) ? true : undefined), 60_000);
    expect((await audit('policy.autopilot.bootstrap')).map((a) => a.target_id).sort()).toEqual([kumodNode.id, simNode.id].sort());
    await settled();
  }, 120_000);

  it("kumod's bounces lock the tenant; the lock reaches both nodes at once", async () => {
    const since = new Date();
    // 100 messages, 6 to addresses that do not exist: past the minimum sample, far past 1 % bounces
    for (let i = 0; i < 100; i += 10) await Promise.all(Array.from({ length: 10 }, (_v, k) => send(i + k < 6 ? `unknown${i + k}@inbox.test` : `reader${i + k}@inbox.test`)));
    await deliveriesRecorded(100, since);
    const start = await startedSince(since);
    expect(start.details).toMatchObject({ urgent: true, canaries: [] });
    await rolloutIn(start.target_id, 'done');
    expect(tenantEntry(installed(), tenant)).toMatch(/external_locked = true/);
    expect(tenantEntry(sim.running()!, tenant)).toMatch(/external_locked = true/);
    // and the gateway refuses the tenant's external mail now
    await expect(send('reader-late@inbox.test')).rejects.toThrow(/550 5\.7\.1 external sending is locked/);
    // placement then moves the tenant to rehabilitation: an ordinary change, rolled out after it
    await eventually('the tenant in rehabilitation', async () => ((await h.ctx.db.selectFrom('tenant_placements').select('tier').where('tenant_id', '=', tenant).where('superseded_at', 'is', null).executeTakeFirst())?.tier === 'rehabilitation' ? true : undefined), 30_000);
    await settled();
  }, 120_000);

  it('the tenant rehabilitates: kumod runs the release first, soaks on its real deliveries, then the other node gets it', async () => {
    const since = new Date();
    const trust = await expectJson(await h.request('GET', `/v1/tenants/${tenant}/trust`), 200);
    const remaining: number = trust.rehabilitation.clean_sends_needed;
    const { trust: ts } = await expectJson(await h.request('GET', '/v1/settings'), 200);
    // the warming lane's sends and the engagement the warming network gives them, as records of the
    // other node (warming mail leaves from the rehabilitation IPs)
    for (let i = 0; i < remaining; i += 500) {
      const n = Math.min(500, remaining - i);
      await expectJson(await h.request('POST', '/v1/events/kumo', { token: simNode.token, body: Array.from({ length: n }, (_v, k) => kumoRecord('Delivery', { tenant, lane: 'warming', recipient: `w${i + k}@warm.example` })) }), 200);
      const events = Array.from({ length: n }, (_v, k) => i + k).flatMap((m) => [
        ...(m % 100 < ts.open_prior_pct ? [{ id: `o${m}`, tenant_id: tenant, kind: 'open', lane: 'warming', occurred_at: new Date().toISOString() }] : []),
        ...(m % 100 < ts.reply_prior_pct ? [{ id: `r${m}`, tenant_id: tenant, kind: 'reply', lane: 'warming', occurred_at: new Date().toISOString() }] : []),
      ]);
      await expectJson(await h.request('POST', '/v1/events/engagement', { body: { events } }), 200);
    }
    const start = await startedSince(since);
    expect(start.details, JSON.stringify(start.details)).toMatchObject({ urgent: false, canaries: ['kumod-1'] });
    await rolloutIn(start.target_id, 'soaking');
    expect(tenantEntry(installed(), tenant)).toMatch(/external_locked = false/);
    expect(tenantEntry(sim.running()!, tenant)).toMatch(/external_locked = true/);
    // kumod delivers while it soaks; its log hook's records are what the canary is judged on
    const soakFrom = new Date();
    await Promise.all(Array.from({ length: 20 }, (_v, k) => send(`soak${k}@inbox.test`)));
    await deliveriesRecorded(20, soakFrom);
    const done = await rolloutIn(start.target_id, 'done');
    expect(done.health, JSON.stringify(done)).toMatchObject({ verdict: 'healthy' });
    expect(done.nodes.map((n: any) => [n.node, n.runs_it])).toEqual([['kumod-1', true], ['sim-1', true]]);
    expect(tenantEntry(sim.running()!, tenant)).toMatch(/external_locked = false/);
  }, 120_000);

  it("a change whose canary degrades is rolled back: kumod goes back to its previous module and says so; an incident is open", async () => {
    const since = new Date();
    const before = installed();
    const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: '127.0.0.4', node_id: kumodNode.id, rdns_name: 'mta-127-0-0-4.kumod.test', state: 'active' } }), 201);
    await expectJson(await h.request('PUT', `/v1/pools/${standardPool}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    const start = await startedSince(since);
    expect(start.details.canaries).toEqual(['kumod-1']);
    await rolloutIn(start.target_id, 'soaking');
    expect(installed()).toContain("'127.0.0.4'");
    // the internet starts deferring everything kumod sends
    deferAll = true;
    const soakFrom = new Date();
    await Promise.all(Array.from({ length: 20 }, (_v, k) => send(`deferred${k}@inbox.test`)));
    await deliveriesRecorded(10, soakFrom);
    const rolledBack = await rolloutIn(start.target_id, 'rolled_back').catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(await expectJson(await h.request('GET', `/v1/policy/rollouts/${start.target_id}`), 200))}`);
    });
    deferAll = false;
    expect(rolledBack.outcome).toMatch(/the canaries degraded: deferral rate/);
    await eventually('kumod back on its previous module', async () => (installed() === before ? true : undefined), 30_000);
    const st = await eventually('kumod reporting it', async () => {
      const s = await nodeStatus(kumodNode.id);
      return s.state === 'up_to_date' ? s : undefined;
    }, 30_000);
    expect(st.current_version).toBeLessThan(Number(rolledBack.nodes.find((n: any) => n.node === 'kumod-1').version));
    expect(sim.running()).not.toContain("'127.0.0.4'");
    const incidents = await h.ctx.db.selectFrom('reputation_incidents').select(['kind', 'rollout_id']).where('kind', '=', 'policy_rollout').execute();
    expect(incidents.map((i) => String(i.rollout_id))).toEqual([start.target_id]);
    expect((await expectJson(await h.request('GET', '/v1/policy/autopilot'), 200)).paused).toBe(true);
  }, 120_000);
});
