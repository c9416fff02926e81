/**
 * provision-node.yml for real (issue 15): the operator's one command from a registered Hetzner project
 * to a node running its policy. Against a running control plane whose provider is the local Hetzner
 * fake over HTTP (test/support/fake-hetzner.ts), the playbook has the control plane buy the server
 * (catalog choice, cloud-init with the node's settings) and a sending IP (Floating IP, PTR, FCrDNS),
 * vaults the node's token, applies kumomta_node to "the server" (this machine: connection local, no
 * systemd, kumod of KUMOD_BIN under a pid file), whose first port-25 probe reports with the node's own
 * token, and waits until the node runs its policy.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { FakeHetzner, quickHetznerClient } from '../support/fake-hetzner.js';
import { expectJson } from '../support/harness.js';
import { kumoRelease, sayWhySkipped } from '../support/kumo-release.js';
import { ensureAnsible, shown, type Run } from './ansible-helpers.js';
import { liveDkimDir, liveNodeVars, startPlaybookRig, type PlaybookRig } from './playbook-rig.js';

const release = kumoRelease();
if (!release.kumod || !release.shareDir) {
  sayWhySkipped('provision-node.yml against a running control plane', 'KUMOD_BIN names no kumod with its share directory (scripts/test.sh sets it from ../shared/kumomta when that is there)');
}

describe.skipIf(!release.kumod || !release.shareDir)('provision-node.yml against a running control plane and the Hetzner fake', () => {
  const fake = new FakeHetzner();
  let rig: PlaybookRig | null = null;
  let project = '';
  let first: Run;
  let node: { id: string; name: string; public_address: string; provider_server_id: string } | undefined;

  beforeAll(async () => {
    const ansible = await ensureAnsible('provision-node.yml against a running control plane');
    if (!ansible) return;
    await fake.start();
    rig = await startPlaybookRig(ansible, {
      prefix: 'kcp-ansible-provision-',
      env: (apiUrl, dir) => ({
        CP_HETZNER_API_URL: fake.url,
        CP_NODE_CONTROL_PLANE_URL: apiUrl,
        CP_NODE_LOCATIONS: 'fsn1',
        CP_IP_RDNS_ZONE: 'mta.example.net',
        CP_POLICY_DKIM_KEY_DIR: liveDkimDir(dir),
        CP_NODE_STALE_MS: '60000',
        CP_NODE_SSH_KEYS: 'ops,ci@runner',
      }),
      overrides: {
        cloudProvider: (p) => quickHetznerClient(p, 4),
        // the PTR names the fake holds resolve back to their addresses, as published A records would
        resolveAddresses: async (name) => [...fake.floatingIps.values()].filter((f) => f.dns_ptr.some((d) => d.dns_ptr === name)).map((f) => f.ip),
      },
    });
    const { h } = rig;
    project = (await expectJson(await h.request('POST', '/v1/provider-projects', { body: { name: 'mail', token: fake.token, port25_egress: 'requested' } }), 201)).id;
    const { vars, relayPort } = await liveNodeVars(rig, release, 'hz-1.kumod.test');
    // "the server" is this machine (connection local)
    rig.setVars({ ...vars, kcp_server_boot_timeout_seconds: 30 });
    const running = rig.playbook('provision-node.yml', ['-e', 'node_name=hz-1', '-e', 'node_project=mail', '-e', 'node_ips=1', '-e', `node_relay_port=${relayPort}`, '-e', 'node_canary=true']);
    // as the autopilot would once the node exists: a module for it to pull
    node = await eventually('the control plane bought the node', async () => (await expectJson(await h.request('GET', '/v1/nodes'), 200)).items.find((n: { name: string }) => n.name === 'hz-1'), 60_000);
    await expectJson(await h.request('POST', '/v1/policy/publish', { body: {} }), 200);
    first = await running;
  }, 240_000);

  afterAll(async () => {
    await rig?.close();
    await fake.stop();
  });

  it('buys the server and a sending IP through the control plane, deploys the node, and the node runs its policy', async (ctx) => {
    if (!rig) return ctx.skip();
    const { h, dir } = rig;
    expect(first.status, `${shown(first)}\n--- kumod\n${rig.kumodLog()}`).toBe(0);
    expect(first.stdout).toMatch(/TASK \[Wait until the node runs its current policy\][\s\S]*ok: \[hz-1\]/);
    // bought at the provider, labelled with the control plane's key, enrolled by its cloud-init
    const server = [...fake.servers.values()].find((s) => s.name === 'hz-1')!;
    expect(server.labels).toMatchObject({ role: 'kumomta-node', 'kcp.node': node!.id });
    // Ansible's way in: the project's SSH keys installed for root
    expect(fake.sshKeysOf.get(server.id)).toEqual(['ops', 'ci@runner']);
    expect(node).toMatchObject({ public_address: server.public_net.ipv4.ip, provider_server_id: String(server.id) });
    const settings = readFileSync(path.join(dir, 'opt/kumomta/etc/policy/cp/node_settings.lua'), 'utf8');
    const token = /node_token = '([^']+)'/.exec(settings)![1]!;
    expect(server.user_data).toContain(`node_token = '${token}',`);
    expect(server.user_data).toContain(`node_id = '${node!.id}',`);
    expect(await rig.vaulted('hz-1')).toBe(`kumomta_node_token: ${JSON.stringify(token)}`);
    expect(first.stdout + first.stderr).not.toContain(token);
    // the Floating IP: assigned, its PTR set and forward-confirmed, configured on the interface by the role
    const fip = [...fake.floatingIps.values()].find((f) => f.server === server.id)!;
    expect(fip.dns_ptr).toEqual([{ ip: fip.ip, dns_ptr: `ip-${fip.ip.replaceAll('.', '-')}.mta.example.net` }]);
    expect(first.stdout).toContain(`sending IPs: ${fip.ip}`);
    const ips = (await expectJson(await h.request('GET', `/v1/ips?node_id=${node!.id}`), 200)).items;
    expect(ips).toMatchObject([{ address: expect.stringMatching(new RegExp(`^${fip.ip.replaceAll('.', '\\.')}(/32)?$`)), state: 'warming', provider_floating_ip_id: String(fip.id) }]);
    expect(readFileSync(path.join(dir, 'netplan-floating-ips.yaml'), 'utf8')).toContain(`- ${fip.ip}/32`);
    const status = (await expectJson(await h.request('GET', '/v1/policy/status'), 200)).nodes.find((n: { node_id: string }) => n.node_id === node!.id);
    expect(status).toMatchObject({ state: 'up_to_date', up_to_date: true, install_error: null });
  });

  it("reported the node's first port-25 probe with its own token: blocked here, so it carries no external mail", async (ctx) => {
    if (!rig || first.status !== 0) return ctx.skip();
    const { h } = rig;
    expect(first.stdout).toMatch(/TASK \[kumomta_node : Probe port 25 now\][\s\S]*refused 127\.0\.0\.1:9 \[127\.0\.0\.1\]/);
    expect((await expectJson(await h.request('GET', `/v1/nodes/${node!.id}`), 200)).port25_probe).toMatchObject({ connected: false, detail: expect.stringMatching(/^refused 127\.0\.0\.1:9 /) });
    const audit = (await expectJson(await h.request('GET', `/v1/audit-log?target_id=${node!.id}`), 200)).items.find((e: { action: string }) => e.action === 'node.egress_probe');
    expect(audit).toMatchObject({ actor_type: 'node', actor_id: node!.id });
    expect((await expectJson(await h.request('GET', `/v1/provider-projects/${project}`), 200)).port25_egress).toBe('requested');
  });

  it('the inventory now lists the node with the IP it was bought', async (ctx) => {
    if (!rig || first.status !== 0) return ctx.skip();
    const again = await rig.playbook('provision-node.yml', ['-e', 'node_name=hz-1', '-e', 'node_project=mail']);
    // a second purchase under the same name is refused, and says what to do instead
    expect(again.status).not.toBe(0);
    expect(again.stdout).toMatch(/POST \/v1\/nodes\/provision answered 409 CONFLICT: a node named hz-1 exists \(a node of that name exists: deploy it with site\.yml -l hz-1\)/);
    const fip = [...fake.floatingIps.values()].find((f) => f.labels['kcp.node'] === node!.id)!;
    const inv = await rig.playbook('site.yml', ['--list-hosts']);
    expect(inv.stdout, shown(inv)).toContain('hz-1');
    const vars = JSON.parse((await rig.inventory(['--host', 'hz-1'])).stdout);
    expect(vars).toMatchObject({ kcp_node_id: node!.id, kcp_floating_ips: [fip.ip], ansible_host: node!.public_address });
  }, 120_000);
});
