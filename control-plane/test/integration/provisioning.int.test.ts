/**
 * Provisioning through the API against the local Hetzner fake over real HTTP (test/support/fake-hetzner.ts)
 * and the test DNS server: provider projects and their tokens (sealed, never shown), a read-only token,
 * a node bought from the catalog with cloud-init that enrols it, a crash part-way re-run that adopts the
 * server by its label, a sending IP with PTR and forward-confirmed reverse DNS, the port-25 egress gate
 * on placement, costs from the provider's prices, and releasing an IP.
 */
import { Resolver } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyState } from '../../src/app/policy/policy-inputs.js';
import { ipCarriesMail } from '../../src/domain/fleet/ip-lifecycle.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { FakeHetzner, quickHetznerClient } from '../support/fake-hetzner.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

const fake = new FakeHetzner();
let dns: DnsServer;
let h: Harness;
/** attempts per request of the provider client: 1 makes a dropped answer a failure (a crash part-way) */
let attempts = 4;

beforeAll(async () => {
  await fake.start();
  dns = await startDnsServer({ a: { 'unrelated.example': ['192.0.2.1'] } });
  const resolver = new Resolver();
  resolver.setServers([dns.address]);
  const none = (e: NodeJS.ErrnoException) => (e.code === 'ENOTFOUND' || e.code === 'ENODATA' ? [] : Promise.reject(e));
  h = await startHarness(
    { CP_HETZNER_API_URL: fake.url, CP_NODE_CONTROL_PLANE_URL: 'https://cp.example.net:8443', CP_IP_RDNS_ZONE: 'mta.example.net', CP_NODE_LOCATIONS: 'fsn1,nbg1' },
    {
      overrides: {
        cloudProvider: (p) => quickHetznerClient(p, attempts),
        resolveAddresses: (name) => resolver.resolve4(name).catch(none),
      },
    },
  );
});
afterAll(async () => {
  await h?.close();
  await dns?.close();
  await fake.stop();
});

const ids: Record<string, any> = {};

describe('provisioning on Hetzner', () => {
  it('registers provider projects: the token is checked with one read, sealed, and never shown', async () => {
    const bad = await h.request('POST', '/v1/provider-projects', { body: { name: 'wrong', token: 'not-a-token' } });
    expect(bad.status).toBe(400);
    const p = await expectJson(await h.request('POST', '/v1/provider-projects', { body: { name: 'main', token: fake.token } }), 201);
    expect(p).toMatchObject({ provider: 'hetzner', name: 'main', api_url: fake.url, port25_egress: 'blocked', token_read_only: false });
    ids.project = p.id;
    const list = await expectJson(await h.request('GET', '/v1/provider-projects'), 200);
    expect(list.items.map((x: any) => x.name)).toEqual(['main']);
    const row = await h.ctx.db.selectFrom('provider_projects').select(['token_enc']).where('id', '=', p.id).executeTakeFirstOrThrow();
    expect(row.token_enc.toString('latin1')).not.toContain(fake.token);
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${p.id}`), 200);
    expect(JSON.stringify(audit)).not.toContain(fake.token);
    expect(JSON.stringify(list) + h.logText()).not.toContain(fake.token);
    // tenants and lesser scopes never see provider projects
    expect((await h.request('GET', '/v1/provider-projects', { token: await h.tokenWith(['write']) })).status).toBe(403);
  });

  it('accepts a read-only token for reads, and refuses provisioning with PROVIDER_TOKEN_READ_ONLY', async () => {
    const ro = await expectJson(await h.request('POST', '/v1/provider-projects', { body: { name: 'readonly', token: fake.readOnlyToken } }), 201);
    const res = await h.request('POST', '/v1/nodes/provision', { body: { project_id: ro.id, name: 'never' } });
    expect(res.status).toBe(403);
    const body = (await res.json()) as any;
    expect(body.context.provider_code).toBe('PROVIDER_TOKEN_READ_ONLY');
    expect(JSON.stringify(body)).not.toContain(fake.readOnlyToken);
    expect((await expectJson(await h.request('GET', `/v1/provider-projects/${ro.id}`), 200)).token_read_only).toBe(true);
    expect(await h.ctx.db.selectFrom('nodes').select('id').where('name', '=', 'never').executeTakeFirst()).toBeUndefined();
  });

  it('provisions a node chosen from the catalog, with cloud-init user data that enrols it', async () => {
    const r = await expectJson(await h.request('POST', '/v1/nodes/provision', { body: { project_id: ids.project, name: 'node-a' } }), 201);
    // cheapest x86 type with 2 cores and 4 GB sold in fsn1 (cax11 is Arm, cx11 is retired)
    expect(r).toMatchObject({ server_type: 'cx22', location: 'fsn1', adopted: false, monthly_cost: { source: 'provider' } });
    expect(r.node).toMatchObject({ name: 'node-a', provider: 'hetzner', region: 'fsn1', relay_port: 2525, provider_project_id: ids.project, provider_server_id: r.provider_server_id, port25_probe: null });
    const server = fake.servers.get(Number(r.provider_server_id))!;
    expect(server.public_net.ipv4.ip).toBe(r.node.public_address);
    const key = h.ctx.policySigner.publicKeyRaw.toString('hex');
    expect(server.user_data).toContain("control_plane_url = 'https://cp.example.net:8443',");
    expect(server.user_data).toContain(`node_id = '${r.node.id}',`);
    expect(server.user_data).toContain(`node_token = '${r.token}',`);
    expect(server.user_data).toContain(`policy_public_key_hex = '${key}',`);
    const row = await h.ctx.db.selectFrom('nodes').select(['provider_project_id', 'provider_server_id', 'provider_idempotency_key', 'monthly_cost_usd']).where('id', '=', r.node.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ provider_project_id: ids.project, provider_server_id: r.provider_server_id, provider_idempotency_key: `node-${r.node.id}` });
    // cx22 at 3.79 EUR net, 4.51 gross, at 1.08 USD/EUR
    expect(Number(row.monthly_cost_usd)).toBe(4.87);
    expect(server.labels['kcp.intent']).toBe(`node-${r.node.id}`);
    // the token in the user data is the node's: it authenticates the policy pull
    expect((await h.request('GET', `/v1/nodes/${r.node.id}/policy`, { token: r.token })).status).not.toBe(401);
    expect(h.logText()).not.toContain(r.token);
    ids.node = r.node;
  });

  it('re-runs a provisioning that crashed part-way and adopts the server by its label', async () => {
    const before = fake.servers.size;
    attempts = 1;
    fake.dropResponseAfterCreate({ method: 'POST', path: '/servers' });
    const crashed = await h.request('POST', '/v1/nodes/provision', { body: { project_id: ids.project, name: 'node-b' } });
    attempts = 4;
    expect(crashed.status).toBe(503);
    expect(((await crashed.json()) as any).context.provider_code).toBe('PROVIDER_NETWORK');
    // the server was bought, the control plane did not hear of it; the intent was stored first
    expect(fake.servers.size).toBe(before + 1);
    const intent = await h.ctx.db.selectFrom('provisioning_intents').select(['idempotency_key', 'status']).where('node_name', '=', 'node-b').executeTakeFirstOrThrow();
    expect(intent.status).toBe('pending');
    expect(await h.ctx.db.selectFrom('nodes').select('id').where('name', '=', 'node-b').executeTakeFirst()).toBeUndefined();

    const posts = fake.callsTo('POST', '/servers').length;
    const r = await expectJson(await h.request('POST', '/v1/nodes/provision', { body: { project_id: ids.project, name: 'node-b' } }), 201);
    expect(r.adopted).toBe(true);
    expect(fake.servers.size).toBe(before + 1);
    expect(fake.callsTo('POST', '/servers').length).toBe(posts);
    const server = fake.servers.get(Number(r.provider_server_id))!;
    expect(server.labels['kcp.intent']).toBe(intent.idempotency_key);
    // the re-run hands out the token the server's user data already carries
    expect(server.user_data).toContain(`node_token = '${r.token}',`);
    const done = await h.ctx.db.selectFrom('provisioning_intents').select(['status', 'node_token_enc']).where('node_name', '=', 'node-b').executeTakeFirstOrThrow();
    expect(done).toMatchObject({ status: 'done', node_token_enc: null });
    // a third run is a conflict, not a second server
    expect((await h.request('POST', '/v1/nodes/provision', { body: { project_id: ids.project, name: 'node-b' } })).status).toBe(409);
  });

  it('buys a sending IP: assigned, PTR set; without forward-confirmed rDNS it carries no mail', async () => {
    const r = await expectJson(await h.request('POST', `/v1/nodes/${ids.node.id}/ips/provision`, { body: {} }), 201);
    const fip = fake.floatingIps.get(Number(r.provider_floating_ip_id))!;
    const ptr = `ip-${fip.ip.replace(/\./g, '-')}.mta.example.net`;
    expect(r).toMatchObject({ ptr_name: ptr, rdns_verified: false, adopted: false, monthly_cost: { amount_usd: 3.86, source: 'provider' } });
    expect(r.ip).toMatchObject({ address: fip.ip, node_id: ids.node.id, state: 'warming', rdns_name: ptr, monthly_cost_usd: 3.86 });
    expect(fip.server).toBe(Number(fake.servers.get(Number((await h.ctx.db.selectFrom('nodes').select('provider_server_id').where('id', '=', ids.node.id).executeTakeFirstOrThrow()).provider_server_id))!.id));
    expect(fip.dns_ptr).toEqual([{ ip: fip.ip, dns_ptr: ptr }]);
    ids.ip = r.ip;
    ids.ptr = ptr;

    const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
    await expectJson(await h.request('PUT', `/v1/pools/${pool.id}/members/${r.ip.id}`, { body: { weight: 100 } }), 200);
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
    ids.tenant = t.id;
    // the egress is open and proved, so only the unverified rDNS keeps it out
    await expectJson(await h.request('POST', `/v1/provider-projects/${ids.project}/egress`, { body: { event: 'limit_granted' } }), 200);
    await expectJson(await h.request('POST', `/v1/provider-projects/${ids.project}/egress`, { body: { event: 'probe', node_id: ids.node.id, connected: true } }), 200);
    expect(await shardOf(t.id)).toEqual([]);
    // the node's policy lists it as a source that carries no mail either
    const policyIp = (await loadPolicyState(h.ctx.db, '/dkim')).ips.find((x) => x.ipId === r.ip.id)!;
    expect(policyIp.readiness).toEqual({ rdnsVerified: false, externalEgress: true });
    expect(ipCarriesMail(policyIp)).toBe(false);

    // the operator publishes the A record; the check passes and the IP carries mail
    dns.zone.a[ptr] = [fip.ip];
    const v = await expectJson(await h.request('POST', `/v1/ips/${r.ip.id}/rdns/verify`), 200);
    expect(v.rdns_verified).toBe(true);
    expect(v.ip).toMatchObject({ provider_floating_ip_id: r.provider_floating_ip_id, rdns_verified_at: expect.any(String) });
    expect(r.ip.rdns_verified_at).toBeNull();
    expect(await shardOf(t.id)).toEqual([r.ip.id]);
  });

  it('never places external mail on a node whose project egress is not open', async () => {
    const denied = await expectJson(await h.request('POST', `/v1/provider-projects/${ids.project}/egress`, { body: { event: 'limit_denied', note: 'abuse desk' } }), 200);
    expect(denied).toMatchObject({ port25_egress: 'blocked', port25_note: 'abuse desk' });
    expect(await shardOf(ids.tenant)).toEqual([]);
    expect((await expectJson(await h.request('POST', `/v1/provider-projects/${ids.project}/egress`, { body: { event: 'limit_requested' } }), 200)).port25_egress).toBe('requested');
    expect(await shardOf(ids.tenant)).toEqual([]);
    // a node's successful probe is proof the block is gone
    const open = await expectJson(await h.request('POST', `/v1/provider-projects/${ids.project}/egress`, { body: { event: 'probe', node_id: ids.node.id, connected: true } }), 200);
    expect(open).toMatchObject({ port25_egress: 'open', node_probe: { node_id: ids.node.id, connected: true } });
    expect((await expectJson(await h.request('GET', `/v1/nodes/${ids.node.id}`), 200)).port25_probe).toMatchObject({ connected: true });
    expect(await shardOf(ids.tenant)).toEqual([ids.ip.id]);
    // a failed probe takes that node out of mail, and leaves the project open for its other nodes
    expect((await expectJson(await h.request('POST', `/v1/provider-projects/${ids.project}/egress`, { body: { event: 'probe', node_id: ids.node.id, connected: false } }), 200)).port25_egress).toBe('open');
    expect(await shardOf(ids.tenant)).toEqual([]);
    expect((await expectJson(await h.request('GET', `/v1/nodes/${ids.node.id}`), 200)).port25_probe).toMatchObject({ connected: false, detail: 'recorded by an operator' });
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${ids.node.id}`), 200);
    const probes = audit.items.filter((e: any) => e.action === 'node.egress_probe').map((e: any) => e.details.connected);
    expect(probes[0]).toBe(false);
    expect(probes).toContain(true);
  });

  it('feeds the provider prices to /v1/costs, the 4.99/9.99 baseline where none is known', async () => {
    const costs = await expectJson(await h.request('GET', '/v1/costs'), 200);
    const standard = costs.per_tier.find((t: any) => t.tier === 'standard');
    expect(standard).toMatchObject({ ips: 1, ip_usd: 3.86, node_usd: 4.87 });
    const manual = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'by-hand', region: 'fsn1', public_address: '192.0.2.50' } }), 201);
    await expectJson(await h.request('POST', '/v1/ips', { body: { address: '192.0.2.51', node_id: manual.id, rdns_name: 'mx51.example.net' } }), 201);
    const after = await expectJson(await h.request('GET', '/v1/costs'), 200);
    expect(after.per_tier.find((t: any) => t.tier === 'unassigned')).toMatchObject({ ips: 1, ip_usd: 4.99 });
  });

  it('retires a bought IP: out of mail, PTR reset, unassigned and deleted at the provider', async () => {
    const fipId = Number((await h.ctx.db.selectFrom('ip_addresses').select('provider_floating_ip_id').where('id', '=', ids.ip.id).executeTakeFirstOrThrow()).provider_floating_ip_id);
    const r = await expectJson(await h.request('POST', `/v1/ips/${ids.ip.id}/retire-from-provider`), 200);
    expect(r).toMatchObject({ released: true, ip: { state: 'retired', pool_id: null } });
    expect(fake.floatingIps.has(fipId)).toBe(false);
    expect(fake.callsTo('POST', `/floating_ips/${fipId}/actions/change_dns_ptr`).length).toBe(2);
    expect(fake.callsTo('POST', `/floating_ips/${fipId}/actions/unassign`).length).toBe(1);
    // again: nothing left to release
    expect((await expectJson(await h.request('POST', `/v1/ips/${ids.ip.id}/retire-from-provider`), 200)).released).toBe(false);
  });
});

async function shardOf(tenantId: string): Promise<string[]> {
  const p = await expectJson(
    await h.request('POST', `/v1/tenants/${tenantId}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 3_600_000).toISOString(), reason: 'test' } }),
    200,
  );
  return p.shard.map((s: any) => s.ip_id);
}
