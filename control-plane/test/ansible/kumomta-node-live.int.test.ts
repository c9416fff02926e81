/**
 * The operator's playbooks for real against a running control plane (issue 15), on this machine (no
 * systemd, connection local, the kumod of KUMOD_BIN as a `binary` install into a temp prefix):
 *   1. add-node.yml registers the node (POST /v1/nodes), keeps its token in Ansible Vault, applies the
 *      kumomta_node role and runs the playbooks' health check (tasks/node-health.yml): kumod's HTTP
 *      listener answers and GET /v1/policy/status reports the node up_to_date, so the kumod the role
 *      laid down pulled, verified, installed and runs its policy;
 *   2. that kumod relays: a tenant made through the API (domain, credential, placed in the pool of the
 *      node's IP) submits a message over SMTP to the real submission gateway, which answers 250 with
 *      kumod's own reply (the spool id the delivered message's Received header carries); the message
 *      reaches the SMTP server standing for the internet (MX from the test's DNS server, given to the
 *      node as kumomta_node_dns_name_servers, its port as kumomta_node_egress_overrides) from the IP
 *      placement chose, DKIM-signed for the tenant's domain, and kumod's log hook brings its Delivery
 *      record back to the control plane (the tenant's trust counts it);
 *   3. rotate-node-token.yml, with the dynamic inventory reading the same control plane, rotates the
 *      token, restarts kumod on the new one, vaults it, and sees the node up to date again;
 *   4. roll-node-runtime.yml rolls a changed runtime (the token read back from the vault) and checks
 *      the node after it.
 */
import { cpSync, appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { expectJson, type Harness } from '../support/harness.js';
import { kumoRelease, sayWhySkipped } from '../support/kumo-release.js';
import { readyToSend, startTestGateway, submit, verifyDkimIn } from '../support/mail-flow.js';
import { loopbackEgressOverrides } from '../support/node-dir.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { ansibleDir, ensureAnsible, shown, type Run } from './ansible-helpers.js';
import { liveDkimDir, liveNodeVars, startPlaybookRig, type PlaybookRig } from './playbook-rig.js';

const release = kumoRelease();
if (!release.kumod || !release.shareDir) {
  sayWhySkipped('the playbooks against a running control plane', 'KUMOD_BIN names no kumod with its share directory (scripts/test.sh sets it from ../shared/kumomta when that is there)');
}

describe.skipIf(!release.kumod || !release.shareDir)('add-node.yml, rotate-node-token.yml and roll-node-runtime.yml against a running control plane', () => {
  let rig: PlaybookRig | null = null;
  let h: Harness | undefined;
  let dir = '';
  let cpDir = '';
  let relayPort = 0;
  let added: Run;
  let node: { id: string; relay_port: number } | undefined;
  // the internet for the node's relay: a DNS server answering MX, one SMTP server
  let dns: DnsServer | undefined;
  let internet: SmtpSink | undefined;

  const playbook = (file: string, args: string[] = []) => rig!.playbook(file, args);
  const kumodLog = () => rig!.kumodLog();
  const nodeStatus = async () => (await expectJson(await h!.request('GET', '/v1/policy/status'), 200)).nodes.find((n: { node_id: string }) => n.node_id === node?.id);
  const vaulted = () => rig!.vaulted('ansible-1');
  const settingsToken = () => /node_token = '([^']+)'/.exec(readFileSync(path.join(cpDir, 'node_settings.lua'), 'utf8'))![1]!;

  beforeAll(async () => {
    const ansible = await ensureAnsible('the playbooks against a running control plane');
    if (!ansible) return;
    rig = await startPlaybookRig(ansible, { prefix: 'kcp-ansible-live-', env: (_url, d) => ({ CP_POLICY_DKIM_KEY_DIR: liveDkimDir(d), CP_NODE_STALE_MS: '60000' }) });
    ({ h, dir } = rig);
    cpDir = path.join(dir, 'opt/kumomta/etc/policy/cp');
    internet = await startSmtpSink();
    dns = await startDnsServer({ mx: { 'inbox.test': [{ exchange: 'mx.inbox.test' }] }, a: { 'mx.inbox.test': ['127.0.0.1'] } });
    const live = await liveNodeVars(rig, release, 'ansible-1.kumod.test', {
      // the relay's way out: MX from the test's DNS server, the internet one SMTP server on loopback
      kumomta_node_dns_name_servers: [dns.address],
      kumomta_node_egress_overrides: loopbackEgressOverrides(internet.port),
    });
    relayPort = live.relayPort;
    // the config monitor's 10 s are not what is tested here: the check after the roll is
    rig.setVars({ ...live.vars, kcp_runtime_settle_seconds: 2 });
    const harness = h;
    const adding = playbook('add-node.yml', ['-e', 'node_name=ansible-1', '-e', 'node_region=fsn1', '-e', 'node_public_address=127.0.0.1', '-e', `node_relay_port=${relayPort}`, '-e', 'node_canary=true']);
    // meanwhile, as an operator would: an IP in a pool for the new node, and a published policy
    node = await eventually('add-node.yml registered the node', async () => (await expectJson(await harness.request('GET', '/v1/nodes'), 200)).items.find((n: { name: string }) => n.name === 'ansible-1'), 60_000);
    const pool = (await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201)).id;
    const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: '127.0.0.2', node_id: node!.id, rdns_name: 'mta-127-0-0-2.kumod.test', state: 'active' } }), 201);
    await expectJson(await h.request('PUT', `/v1/pools/${pool}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    await expectJson(await h.request('POST', '/v1/policy/publish', { body: {} }), 200);
    added = await adding;
  }, 240_000);

  afterAll(async () => {
    await rig?.close();
    await internet?.close();
    await dns?.close();
  });

  it('add-node.yml registers, vaults, deploys, and the node runs its policy', async (ctx) => {
    if (!rig) return ctx.skip();
    expect(added.status, `${shown(added)}\n--- kumod\n${kumodLog()}`).toBe(0);
    expect(added.stdout).toMatch(/TASK \[Wait until the node runs its current policy\][\s\S]*ok: \[ansible-1\]/);
    expect(node!.relay_port).toBe(relayPort);
    expect(await nodeStatus()).toMatchObject({ state: 'up_to_date', up_to_date: true, running_copy: 'generated', install_error: null });
    expect(readFileSync(path.join(cpDir, 'generated.lua.sha256'), 'utf8').trim()).toBe((await nodeStatus()).applied_sha256);
    // the token of POST /v1/nodes: in node_settings.lua and, encrypted, in the node's host_vars; never in the output
    const token = settingsToken();
    expect(token).toMatch(/^node_/);
    expect(readFileSync(rig!.vaultFile('ansible-1'), 'utf8')).toMatch(/^\$ANSIBLE_VAULT;1\.1;AES256\n/);
    expect(await vaulted()).toBe(`kumomta_node_token: ${JSON.stringify(token)}`);
    expect(added.stdout + added.stderr).not.toContain(token);
  });

  it('the kumod the role laid down relays a message from the gateway: from the placed IP, DKIM-signed, its delivery record back', async (ctx) => {
    if (!rig || added.status !== 0) return ctx.skip();
    const harness = h!;
    // as an operator would, through the API: a tenant, its sending domain (its DNS records published),
    // placed in the standard tier (the pool of the node's IP), an SMTP credential; then a publish
    const tenant = await expectJson(await harness.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
    await readyToSend(harness, tenant.id, 'acme.test', dns!);
    const creds = await expectJson<{ username: string; password: string }>(await harness.request('POST', `/v1/tenants/${tenant.id}/smtp-credentials`, { body: {} }), 201);
    const published = (await expectJson(await harness.request('POST', '/v1/policy/publish', { body: {} }), 200)).results.find((r: { node_id: string }) => r.node_id === node!.id);
    expect(published).toMatchObject({ changed: true });
    // the node pulls it within its poll interval (1 s)
    await eventually('the node runs the policy with the tenant', async () => {
      const s = await nodeStatus();
      return s?.up_to_date && s.applied_version === published.version ? s : undefined;
    }, 30_000).catch((e: Error) => Promise.reject(new Error(`${e.message}\n--- kumod\n${kumodLog()}`)));
    const gateway = await startTestGateway(harness);
    try {
      const info = await submit(gateway.submissionPort, creds, { from: 'Acme Sales <sales@acme.test>', to: 'reader@inbox.test', subject: 'via the node Ansible laid down', text: 'hello from the platform' });
      // the gateway's 250 carries kumod's own reply to the data, with the spool id it gave the message
      const spoolId = /^250 2\.0\.0 OK ids=([0-9a-f]{32})$/.exec(info.response)?.[1];
      expect(spoolId, info.response).toBeDefined();
      const [m] = await eventually('the message at the internet', async () => (internet!.messages.length > 0 ? internet!.messages : undefined), 30_000).catch((e: Error) =>
        Promise.reject(new Error(`${e.message}\n--- kumod\n${kumodLog()}`)),
      );
      expect(internet!.messages).toHaveLength(1);
      expect(m!.rcptTo).toEqual(['reader@inbox.test']);
      // and it is that message: received by the node the role configured (its hostname) under that id,
      // so the gateway's 250 came after kumod had accepted it
      expect(m!.raw.toString()).toMatch(new RegExp(`^Received: from [^\r\n]*\r\n\\s+by ansible-1\\.kumod\\.test [^\r\n]*\r\n\\s+with ESMTP id ${spoolId} for <reader@inbox\\.test>;`, 'm'));
      // from the one IP of the tenant's pool, kumod saying its rDNS name in EHLO
      expect(m!.remoteAddress).toBe('127.0.0.2');
      expect(m!.clientHostname).toBe('mta-127-0-0-2.kumod.test');
      const dkim = await verifyDkimIn(dns!, m!.raw);
      expect(dkim.results.map((r) => [r.signingDomain, r.status.result])).toEqual([['acme.test', 'pass']]);
      // kumod's log hook posts the Delivery record (POST /v1/events/kumo, the node's token); the tenant's counts have it
      const delivered = await eventually('the delivery record at the control plane', async () => {
        const t = await expectJson(await harness.request('GET', `/v1/tenants/${tenant.id}/trust`), 200);
        return t.counts.delivered > 0 ? t.counts : undefined;
      }, 30_000);
      expect(delivered).toMatchObject({ sent: 1, delivered: 1, bounced: 0 });
      const record = await harness.ctx.db.selectFrom('delivery_events').selectAll().where('tenant_id', '=', tenant.id).where('record_type', '=', 'Delivery').executeTakeFirstOrThrow();
      expect(record).toMatchObject({ node_id: node!.id, recipient: 'reader@inbox.test', outcome: 'delivered', egress_source: 'ip-127-0-0-2', response_code: 250 });
    } finally {
      await gateway.close();
    }
  }, 90_000);

  it('rotate-node-token.yml rotates, restarts kumod on the new token, vaults it, and checks the node', async (ctx) => {
    if (!rig || added.status !== 0) return ctx.skip();
    const oldToken = settingsToken();
    const pidBefore = readFileSync(path.join(dir, 'kumod.pid'), 'utf8');
    const r = await playbook('rotate-node-token.yml');
    expect(r.status, `${shown(r)}\n--- kumod\n${kumodLog()}`).toBe(0);
    expect(r.stdout).toMatch(/ansible-1\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0/);
    const newToken = settingsToken();
    expect(newToken).not.toBe(oldToken);
    expect(readFileSync(path.join(dir, 'kumod.pid'), 'utf8')).not.toBe(pidBefore);
    expect(await nodeStatus()).toMatchObject({ up_to_date: true });
    expect((await h!.request('GET', `/v1/nodes/${node!.id}/policy`, { token: oldToken })).status).toBe(401);
    expect(await vaulted()).toBe(`kumomta_node_token: ${JSON.stringify(newToken)}`);
    expect(r.stdout + r.stderr).not.toContain(newToken);
  }, 180_000);

  it('roll-node-runtime.yml rolls a changed runtime to the node, the token read from its vault file, and checks it', async (ctx) => {
    if (!rig || added.status !== 0) return ctx.skip();
    const runtime = path.join(dir, 'runtime-next');
    cpSync(path.join(ansibleDir, '../lua-policy/src'), runtime, { recursive: true });
    appendFileSync(path.join(runtime, 'cp_routing.lua'), '-- rolled by roll-node-runtime.yml\n');
    const token = settingsToken();
    const r = await playbook('roll-node-runtime.yml', ['-e', `kumomta_node_runtime_src_dir=${runtime}`]);
    expect(r.status, `${shown(r)}\n--- kumod\n${kumodLog()}`).toBe(0);
    expect(r.stdout).toMatch(/PLAY \[Roll the runtime to the canaries\][\s\S]*TASK \[Wait until the node runs its current policy\][\s\S]*ok: \[ansible-1\]/);
    expect(readFileSync(path.join(cpDir, 'cp_routing.lua'), 'utf8')).toMatch(/-- rolled by roll-node-runtime.yml\n$/);
    expect(settingsToken()).toBe(token);
    expect(await nodeStatus()).toMatchObject({ up_to_date: true });
  }, 180_000);
});
