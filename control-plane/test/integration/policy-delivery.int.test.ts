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
  // short, so the test can watch a node go stale and stop pulling
  h = await startHarness({ CP_NODE_STALE_MS: '1500' });
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

const pull = (node: 'canary' | 'second', etag?: string, as: 'canary' | 'second' = node, report: Record<string, string> = {}) =>
  h.request('GET', `/v1/nodes/${nodes[node]!.id}/policy`, { token: nodes[as]!.token, headers: { ...(etag ? { 'if-none-match': etag } : {}), ...report } });
/** A pull from a node that runs the module with this ETag, as the node runtime reports it. */
const pullRunning = (node: 'canary' | 'second', etag: string, extra: Record<string, string> = {}) =>
  pull(node, etag, node, { 'x-kcp-running-sha256': etag.replaceAll('"', ''), 'x-kcp-running-copy': 'generated', ...extra });
const statusOf = async (node: string) => (await expectJson(await h.request('GET', '/v1/policy/status'), 200)).nodes.find((n: any) => n.node === node);

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

    // served is not applied: a fetch alone says nothing about what the node runs
    expect(await statusOf('canary')).toMatchObject({ served_version: 1, applied_version: null, state: 'applying', up_to_date: false });
    expect(await statusOf('canary')).toHaveProperty('served_at', expect.any(String));
    expect((await expectJson(await h.request('POST', '/v1/policy/promote', { body: { canary_node_id: nodes.canary!.id } }), 412)).detail).toContain('reports it applied');
    expect((await pullRunning('canary', etag)).status).toBe(304);
    expect(await statusOf('canary')).toMatchObject({ served_version: 1, applied_version: 1, applied_sha256: etag.replaceAll('"', ''), running_copy: 'generated', state: 'up_to_date', fallback: false });

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
    // the node never ran v2: it still runs v1's bytes, which are current again
    expect(await statusOf('canary')).toMatchObject({ current_version: 1, applied_version: 1, state: 'up_to_date' });
    const versions = await expectJson(await h.request('GET', `/v1/nodes/${nodes.canary!.id}/policy/versions`), 200);
    expect(versions.items.map((v: any) => [v.version, v.current, v.rolled_back_at !== null])).toEqual([[2, false, true], [1, true, false]]);
    expect((await expectJson(await h.request('POST', `/v1/nodes/${nodes.canary!.id}/policy/rollback`), 409)).code).toBe('CONFLICT');
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${nodes.canary!.id}&action=policy.rollback`), 200);
    expect(audit.items[0].details).toEqual({ from: 2, to: 1 });
  });

  it('a node reports a refused install and a fallback; the status says stale, then not pulling', async () => {
    await expectJson(await h.request('POST', `/v1/tenants/${premiumTenant}/placement/override`, { body: { tier: 'premium', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'back to premium' } }), 200);
    await expectJson(await h.request('POST', '/v1/policy/publish', { body: { node_ids: [nodes.canary!.id] } }), 200);
    const served = await pull('canary', '"0000"', 'canary', {
      'x-kcp-running-sha256': 'A'.repeat(64), 'x-kcp-running-copy': 'last_known_good', 'x-kcp-install-error': 'signature does not verify:\tmodule refused',
    });
    expect(served.status).toBe(200);
    let s = await statusOf('canary');
    expect(s).toMatchObject({ state: 'applying', fallback: true, running_copy: 'last_known_good', applied_version: null, applied_sha256: 'a'.repeat(64), install_error: 'signature does not verify: module refused' });
    expect(s.reason).toContain('its last install failed: signature does not verify');
    // a stale node keeps pulling but never runs what it is given
    await new Promise((r) => setTimeout(r, 1600));
    await pull('canary', undefined, 'canary', { 'x-kcp-running-sha256': 'a'.repeat(64), 'x-kcp-running-copy': 'last_known_good' });
    s = await statusOf('canary');
    expect(s.state).toBe('stale');
    // the node installs it: the error is gone with it
    await pullRunning('canary', served.headers.get('etag')!);
    expect(await statusOf('canary')).toMatchObject({ state: 'up_to_date', fallback: false, install_error: null });
    await new Promise((r) => setTimeout(r, 1600));
    expect(await statusOf('canary')).toMatchObject({ state: 'not_pulling' });
    expect((await statusOf('canary')).reason).toMatch(/last pulled \d+ s ago/);
  });

  it.each([
    [{ 'x-kcp-running-sha256': 'xyz' }, 'x-kcp-running-sha256'],
    [{ 'x-kcp-running-sha256': 'b'.repeat(64), 'x-kcp-running-copy': 'elsewhere' }, 'x-kcp-running-copy'],
    [{ 'x-kcp-running-sha256': 'none', 'x-kcp-running-copy': 'generated' }, 'x-kcp-running-copy'],
  ])('a malformed report %o is a 400 problem naming the header', async (headers, name) => {
    const r = await expectJson(await pull('canary', undefined, 'canary', headers), 400);
    expect(r.code).toBe('VALIDATION_FAILED');
    expect(JSON.stringify(r)).toContain(name);
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
