import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/adapters/crypto/tokens.js';
import { authenticateNode } from '../../src/app/nodes.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const node = (name: string, address: string) => h.request('POST', '/v1/nodes', { body: { name, region: 'fsn1', public_address: address, admin_url: 'http://10.0.0.5:8000' } });

describe('nodes', () => {
  it('issue a node token once, keep only its hash, and rotate it', async () => {
    const n = await expectJson(await node('fsn1-mta1', '203.0.113.1'), 201);
    // the gateways relay to the bootstrap's relay listener (2525), never to the inbound one (25)
    expect(n).toMatchObject({ name: 'fsn1-mta1', provider: 'hetzner', region: 'fsn1', public_address: '203.0.113.1', relay_host: null, relay_port: 2525, monthly_cost_usd: null, last_seen_at: null });
    expect(n.token).toMatch(/^node_[0-9A-Za-z]{40}$/);
    expect(n.token_prefix).toBe(n.token.slice(0, 11));
    const row = await h.ctx.db.selectFrom('nodes').select('token_sha256').where('id', '=', n.id).executeTakeFirstOrThrow();
    expect(row.token_sha256.equals(sha256(n.token))).toBe(true);
    expect(await authenticateNode(h.ctx, n.token)).toEqual({ id: n.id, name: 'fsn1-mta1' });

    const got = await expectJson(await h.request('GET', `/v1/nodes/${n.id}`), 200);
    expect(got).not.toHaveProperty('token');

    const rotated = await expectJson(await h.request('POST', `/v1/nodes/${n.id}/token/rotate`), 200);
    expect(await authenticateNode(h.ctx, n.token)).toBeNull();
    expect(await authenticateNode(h.ctx, rotated.token)).toEqual({ id: n.id, name: 'fsn1-mta1' });
    expect(h.logText()).not.toContain(rotated.token.slice(5));
  });

  it('refuses a duplicate name or address (409) and a bad admin URL (400)', async () => {
    await expectJson(await node('dup-node', '203.0.113.2'), 201);
    expect((await node('dup-node', '203.0.113.3')).status).toBe(409);
    expect((await node('other-node', '203.0.113.2')).status).toBe(409);
    expect((await h.request('POST', '/v1/nodes', { body: { name: 'x', region: 'fsn1', public_address: '203.0.113.9', admin_url: 'javascript:alert(1)' } })).status).toBe(400);
  });

  it('updates cost and region, audited with before and after', async () => {
    const n = await expectJson(await node('cost-node', '203.0.113.4'), 201);
    const u = await expectJson(await h.request('PATCH', `/v1/nodes/${n.id}`, { body: { monthly_cost_usd: 12.49, region: 'hel1' } }), 200);
    expect(u).toMatchObject({ monthly_cost_usd: 12.49, region: 'hel1' });
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_type=node&target_id=${n.id}`), 200);
    expect(audit.items[0]).toMatchObject({ action: 'node.update', details: { before: { region: 'fsn1' }, after: { region: 'hel1', monthly_cost_usd: 12.49 } } });
  });
});

describe('IP addresses and their lifecycle', () => {
  it('moves warming -> active -> quarantined -> warming -> retired, refusing skips', async () => {
    const n = await expectJson(await node('life-node', '203.0.113.10'), 201);
    const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: '203.0.113.11', node_id: n.id, rdns_name: 'MTA11.Example.NET' } }), 201);
    expect(ip).toMatchObject({ state: 'warming', warmup_day: 0, rdns_name: 'mta11.example.net', pool_id: null });
    const url = `/v1/ips/${ip.id}`;
    await expectJson(await h.request('PATCH', url, { body: { state: 'active', reason: 'ramp complete' } }), 200);
    await expectJson(await h.request('PATCH', url, { body: { state: 'quarantined' } }), 200);
    const bad = await expectJson(await h.request('PATCH', url, { body: { state: 'active' } }), 409);
    expect(bad).toMatchObject({ code: 'INVALID_STATE_TRANSITION', context: { from: 'quarantined', to: 'active', allowed: ['warming', 'retired'] } });
    await expectJson(await h.request('PATCH', url, { body: { state: 'warming' } }), 200);
    const retired = await expectJson(await h.request('PATCH', url, { body: { state: 'retired' } }), 200);
    expect(retired.state).toBe('retired');
    expect((await h.request('PATCH', url, { body: { state: 'warming' } })).status).toBe(409);
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${ip.id}`), 200);
    expect(audit.items.map((e: { action: string }) => e.action)).toEqual(['ip.state.retired', 'ip.state.warming', 'ip.state.quarantined', 'ip.state.active', 'ip.create']);
    expect(audit.items[3].details.reason).toBe('ramp complete');
  });

  it('validates addresses and filters lists by node and state', async () => {
    const n = await expectJson(await node('filter-node', '203.0.113.20'), 201);
    expect((await h.request('POST', '/v1/ips', { body: { address: '999.1.1.1', node_id: n.id, rdns_name: 'a.example.net' } })).status).toBe(400);
    expect((await h.request('POST', '/v1/ips', { body: { address: '203.0.113.21', node_id: '00000000-0000-4000-8000-000000000000', rdns_name: 'a.example.net' } })).status).toBe(404);
    await expectJson(await h.request('POST', '/v1/ips', { body: { address: '203.0.113.21', node_id: n.id, rdns_name: 'a.example.net', state: 'active' } }), 201);
    await expectJson(await h.request('POST', '/v1/ips', { body: { address: '2001:db8::21', node_id: n.id, rdns_name: 'b.example.net' } }), 201);
    expect((await h.request('POST', '/v1/ips', { body: { address: '203.0.113.21', node_id: n.id, rdns_name: 'c.example.net' } })).status).toBe(409);
    const active = await expectJson(await h.request('GET', `/v1/ips?node_id=${n.id}&state=active`), 200);
    expect(active.items.map((i: { address: string }) => i.address)).toEqual(['203.0.113.21']);
    const all = await expectJson(await h.request('GET', `/v1/ips?node_id=${n.id}`), 200);
    expect(all.items.map((i: { address: string }) => i.address).sort()).toEqual(['2001:db8::21', '203.0.113.21']);
  });

  it('a node with IPs cannot be deleted (409)', async () => {
    const n = await expectJson(await node('busy-node', '203.0.113.30'), 201);
    await expectJson(await h.request('POST', '/v1/ips', { body: { address: '203.0.113.31', node_id: n.id, rdns_name: 'x.example.net' } }), 201);
    expect((await expectJson(await h.request('DELETE', `/v1/nodes/${n.id}`), 409)).code).toBe('CONFLICT');
  });
});

describe('IP pools', () => {
  it('add members with weights; an IP serves one pool; retired IPs serve none', async () => {
    const n = await expectJson(await node('pool-node', '203.0.113.40'), 201);
    const ip = (addr: string) => h.request('POST', '/v1/ips', { body: { address: addr, node_id: n.id, rdns_name: `p${addr.split('.')[3]}.example.net` } }).then((r) => expectJson(r, 201));
    const ip1 = await ip('203.0.113.41');
    const ip2 = await ip('203.0.113.42');
    const premium = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'premium-1', tier: 'premium' } }), 201);
    const standard = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
    expect((await h.request('POST', '/v1/pools', { body: { name: 'x', tier: 'platinum' } })).status).toBe(400);

    await expectJson(await h.request('PUT', `/v1/pools/${premium.id}/members/${ip1.id}`, { body: { weight: 100 } }), 200);
    const withTwo = await expectJson(await h.request('PUT', `/v1/pools/${premium.id}/members/${ip2.id}`, { body: { weight: 50 } }), 200);
    expect(withTwo.members.map((m: { address: string; weight: number }) => [m.address, m.weight])).toEqual([['203.0.113.41', 100], ['203.0.113.42', 50]]);
    const reweighted = await expectJson(await h.request('PUT', `/v1/pools/${premium.id}/members/${ip2.id}`, { body: { weight: 200 } }), 200);
    expect(reweighted.members[1].weight).toBe(200);

    const twice = await expectJson(await h.request('PUT', `/v1/pools/${standard.id}/members/${ip1.id}`, { body: { weight: 10 } }), 409);
    expect(twice.detail).toContain('one pool at a time');
    expect((await expectJson(await h.request('DELETE', `/v1/ips/${ip1.id}`), 409)).detail).toContain('still a member');

    expect((await expectJson(await h.request('GET', `/v1/ips/${ip1.id}`), 200)).pool_id).toBe(premium.id);
    const after = await expectJson(await h.request('PATCH', `/v1/ips/${ip2.id}`, { body: { state: 'retired' } }), 200);
    expect(after.pool_id).toBeNull();
    expect((await h.request('PUT', `/v1/pools/${standard.id}/members/${ip2.id}`, { body: { weight: 10 } })).status).toBe(409);

    const removed = await expectJson(await h.request('DELETE', `/v1/pools/${premium.id}/members/${ip1.id}`), 200);
    expect(removed.members).toEqual([]);
    const premiums = await expectJson(await h.request('GET', '/v1/pools?tier=premium'), 200);
    expect(premiums.items.map((p: { name: string }) => p.name)).toEqual(['premium-1']);
    await expectJson(await h.request('DELETE', `/v1/pools/${standard.id}`), 204);
  });
});
