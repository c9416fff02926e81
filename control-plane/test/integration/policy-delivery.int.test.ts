/**
 * From the database to a node's Lua: publish to a canary, pull with ETag/304 and a verified
 * signature, promote to the fleet, diff, roll back; reload requests go to a stand-in for kumod's HTTP
 * API; the served module runs in Lua 5.4 with the node runtime.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPolicySignature } from '../../src/adapters/crypto/policy-signer.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { runLua } from '../support/lua.js';
import { kumoRelease, sayWhySkipped } from '../support/kumo-release.js';
import { offlineSettings, stageNode } from '../support/node-dir.js';

const share = kumoRelease().shareDir;

let h: Harness;
let kumod: Server;
const bumps: string[] = [];
const nodes: Record<string, { id: string; token: string }> = {};
let premiumTenant: string;

beforeAll(async () => {
  kumod = createServer((req, res) => {
    bumps.push(`${req.method} ${req.url}`);
    res.writeHead(req.url === '/api/admin/bump-config-epoch' && req.method === 'POST' ? 200 : 404).end();
  });
  await new Promise<void>((r) => kumod.listen(0, '127.0.0.1', r));
  const adminUrl = `http://127.0.0.1:${(kumod.address() as AddressInfo).port}`;
  h = await startHarness();
  for (const [name, addr] of [['canary', '198.51.100.1'], ['second', '198.51.100.2']] as const) {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name, region: 'fsn1', public_address: addr, admin_url: adminUrl } }), 201);
    nodes[name] = { id: n.id, token: n.token };
  }
  const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'premium-1', tier: 'premium' } }), 201);
  const std = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
  let octet = 10;
  for (const n of ['canary', 'second']) {
    for (const p of [pool.id, std.id]) {
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${octet}`, node_id: nodes[n]!.id, rdns_name: `mta${octet++}.example.net`, state: 'active' } }), 201);
      await expectJson(await h.request('PUT', `/v1/pools/${p}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    }
  }
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
  const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: 'acme.example' } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  await expectJson(await h.request('POST', `/v1/tenants/${t.id}/placement/override`, { body: { tier: 'premium', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'launch customer' } }), 200);
  premiumTenant = t.id;
});
afterAll(async () => {
  await new Promise((r) => kumod?.close(r));
  await h?.close();
});

const pull = (node: 'canary' | 'second', etag?: string, as: 'canary' | 'second' = node) =>
  h.request('GET', `/v1/nodes/${nodes[node]!.id}/policy`, { token: nodes[as]!.token, headers: etag ? { 'if-none-match': etag } : {} });

describe('policy delivery', () => {
  it('publishes to the canary only, which pulls a signed module; 304 when unchanged', async () => {
    const r = await expectJson(await h.request('POST', '/v1/policy/publish', { body: { node_ids: [nodes.canary!.id] } }), 200);
    expect(r.results).toHaveLength(1);
    expect(r.results[0]).toMatchObject({ node: 'canary', version: 1, changed: true, reload: { ok: true, status: 200 } });
    expect(bumps).toEqual(['POST /api/admin/bump-config-epoch']);

    expect((await pull('second')).status).toBe(404);
    expect((await pull('canary', undefined, 'second')).status).toBe(403);
    expect((await h.request('GET', `/v1/nodes/${nodes.canary!.id}/policy`, { token: h.adminToken })).status).toBe(401);

    const res = await pull('canary');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/x-lua');
    const text = await res.text();
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(res.headers.get('x-kcp-policy-version')).toBe('1');
    const key = await expectJson(await h.request('GET', '/v1/policy/public-key'), 200);
    expect(verifyPolicySignature(Buffer.from(key.public_key_base64, 'base64'), text, res.headers.get('x-kcp-signature')!)).toBe(true);
    expect(verifyPolicySignature(Buffer.from(key.public_key_base64, 'base64'), `${text} `, res.headers.get('x-kcp-signature')!)).toBe(false);
    expect(text).toContain(`-- model-sha256: ${res.headers.get('x-kcp-model-sha256')}`);

    const again = await pull('canary', etag);
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);

    // the module runs on the node (the runtime in the kumo double; the kumod suite runs it in kumod):
    // the premium tenant leaves through this node's premium IP
    if (share) {
      const node = stageNode((root) => offlineSettings(root, share, { node_id: nodes.canary!.id }), { generated: text });
      const lua = runLua(`local json = require 'json'\nlocal h = require 'harness'\nh.boot(arg[1])\nio.write(json.encode(h.route('gmail.com', '${premiumTenant}', nil)))`, [node.policyDir], node.env);
      expect(lua.status, lua.stderr).toBe(0);
      expect(JSON.parse(lua.stdout).sources.map((s: any) => s.source_address)).toEqual(['203.0.113.10']);
    } else {
      sayWhySkipped('running the served module in the node runtime', "it loads KumoMTA's policy-extras, and no release directory was found");
    }
  });

  it('promotes to the fleet only once the canary runs its current version', async () => {
    const status = await expectJson(await h.request('GET', '/v1/policy/status'), 200);
    expect(status.nodes.find((n: any) => n.node === 'canary')).toMatchObject({ applied_version: 1, current_version: 1, up_to_date: true });
    bumps.length = 0;
    const r = await expectJson(await h.request('POST', '/v1/policy/promote', { body: { canary_node_id: nodes.canary!.id } }), 200);
    expect(r.results.map((x: any) => [x.node, x.version, x.changed])).toEqual([['canary', 1, false], ['second', 1, true]]);
    expect(bumps).toEqual(['POST /api/admin/bump-config-epoch']);
    const text = await (await pull('second')).text();
    expect(text).toContain("source_address = '203.0.113.12'");
    expect(text).not.toContain("source_address = '203.0.113.10'");
  });

  it('a change gives a new version with a reviewable diff; rollback serves the previous one', async () => {
    await expectJson(await h.request('POST', `/v1/tenants/${premiumTenant}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'complaint spike' } }), 200);
    const r = await expectJson(await h.request('POST', '/v1/policy/publish', { body: { node_ids: [nodes.canary!.id] } }), 200);
    expect(r.results[0]).toMatchObject({ version: 2, changed: true });
    const diff = await (await h.request('GET', `/v1/nodes/${nodes.canary!.id}/policy/diff?from=1&to=2`)).text();
    expect(diff).toMatch(/^--- v1\n\+\+\+ v2\n@@/);
    expect(diff.match(/^@@/gm)!.length).toBeGreaterThanOrEqual(2);
    expect(diff).toContain("-      tier = 'premium',");
    expect(diff).toContain("+      tier = 'standard',");
    // a reviewable diff: the changed lines with context, not a whole-file replacement
    const v1 = await (await h.request('GET', `/v1/nodes/${nodes.canary!.id}/policy/versions/1`)).text();
    const v2 = await (await h.request('GET', `/v1/nodes/${nodes.canary!.id}/policy/versions/2`)).text();
    const changed = diff.split('\n').filter((l) => /^[-+](?![-+]{2} )/.test(l)).length;
    expect(changed).toBeLessThan((v1.split('\n').length + v2.split('\n').length) / 3);

    // the canary has not pulled v2 yet: promotion waits
    expect((await expectJson(await h.request('POST', '/v1/policy/promote', { body: { canary_node_id: nodes.canary!.id } }), 412)).code).toBe('PRECONDITION_FAILED');

    const rb = await expectJson(await h.request('POST', `/v1/nodes/${nodes.canary!.id}/policy/rollback`), 200);
    expect(rb).toMatchObject({ version: 1, reload: { ok: true } });
    const served = await pull('canary');
    expect(served.headers.get('x-kcp-policy-version')).toBe('1');
    const versions = await expectJson(await h.request('GET', `/v1/nodes/${nodes.canary!.id}/policy/versions`), 200);
    expect(versions.items.map((v: any) => [v.version, v.current, v.rolled_back_at !== null])).toEqual([[2, false, true], [1, true, false]]);
    expect((await expectJson(await h.request('POST', `/v1/nodes/${nodes.canary!.id}/policy/rollback`), 409)).code).toBe('CONFLICT');
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${nodes.canary!.id}&action=policy.rollback`), 200);
    expect(audit.items[0].details).toEqual({ from: 2, to: 1 });
  });

  it('a node that cannot be reached for the reload does not fail the publish', async () => {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'offline', region: 'fsn1', public_address: '198.51.100.9', admin_url: 'http://127.0.0.1:9' } }), 201);
    const r = await expectJson(await h.request('POST', '/v1/policy/publish', { body: { node_ids: [n.id] } }), 200);
    expect(r.results[0]).toMatchObject({ version: 1, changed: true, reload: { ok: false, status: null } });
    expect(r.results[0].reload.error).toBeTruthy();
  });
});

describe('DKIM keys for nodes', () => {
  it('hands a node the private keys as separate files, matching the policy\'s paths; never in the module', async () => {
    const res = await h.request('GET', `/v1/nodes/${nodes.canary!.id}/dkim-keys`, { token: nodes.canary!.token });
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await expectJson(res, 200);
    expect(body.keys).toHaveLength(1);
    expect(body.keys[0]).toMatchObject({ domain: 'acme.example', selector: 'kcp1', path: '/opt/kumomta/etc/dkim/acme.example/kcp1.key' });
    expect(body.keys[0].private_key_pem).toContain('BEGIN PRIVATE KEY');
    const module = await (await pull('canary')).text();
    expect(module).toContain("key_file = '/opt/kumomta/etc/dkim/acme.example/kcp1.key'");
    expect(module).not.toContain('PRIVATE KEY');
    expect((await h.request('GET', `/v1/nodes/${nodes.canary!.id}/dkim-keys`, { token: nodes.second!.token })).status).toBe(403);
    expect((await h.request('GET', `/v1/nodes/${nodes.canary!.id}/dkim-keys`)).status).toBe(401);
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?action=dkim.keys_served&target_id=${nodes.canary!.id}`), 200);
    expect(audit.items[0]).toMatchObject({ actor_type: 'node', actor_id: nodes.canary!.id });
    expect(h.logText()).not.toContain('BEGIN PRIVATE KEY');
  });
});
