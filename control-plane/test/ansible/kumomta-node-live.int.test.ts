/**
 * The operator's playbooks for real against a running control plane (issue 15), on this machine (no
 * systemd, connection local, the kumod of KUMOD_BIN as a `binary` install into a temp prefix):
 *   1. add-node.yml registers the node (POST /v1/nodes), keeps its token in Ansible Vault, applies the
 *      kumomta_node role and runs the playbooks' health check (tasks/node-health.yml): kumod's HTTP
 *      listener answers and GET /v1/policy/status reports the node up_to_date, so the kumod the role
 *      laid down pulled, verified, installed and runs its policy;
 *   2. rotate-node-token.yml, with the dynamic inventory reading the same control plane, rotates the
 *      token, restarts kumod on the new one, vaults it, and sees the node up to date again;
 *   3. roll-node-runtime.yml rolls a changed runtime (the token read back from the vault) and checks
 *      the node after it.
 */
import { cpSync, appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRelease, sayWhySkipped } from '../support/kumo-release.js';
import { freePortForTest } from '../support/ports.js';
import { ansibleDir, ensureAnsible, localNodeVars, run, shown, type Ansible, type Run } from './ansible-helpers.js';

const release = kumoRelease();
if (!release.kumod || !release.shareDir) {
  sayWhySkipped('the playbooks against a running control plane', 'KUMOD_BIN names no kumod with its share directory (scripts/test.sh sets it from ../shared/kumomta when that is there)');
}

describe.skipIf(!release.kumod || !release.shareDir)('add-node.yml, rotate-node-token.yml and roll-node-runtime.yml against a running control plane', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kcp-ansible-live-'));
  const ctl = path.join(dir, 'opt/kumomta/sbin/kcp-kumodctl');
  const cpDir = path.join(dir, 'opt/kumomta/etc/policy/cp');
  const vaultPass = path.join(dir, 'vault-pass');
  // the inventory script in a directory of the test's own, so the host_vars the playbooks write beside
  // it (kcp_host_vars_dir) are the ones Ansible reads on the next run
  const inventoryDir = path.join(dir, 'inventory');
  const vaultFile = path.join(inventoryDir, 'host_vars/ansible-1/vault.yml');
  let ansible: Ansible | null = null;
  let h: Harness | undefined;
  let closeApi: (() => Promise<void>) | undefined;
  let apiUrl = '';
  let relayPort = 0;
  let extraVars = '';
  let added: Run;
  let node: { id: string; relay_port: number } | undefined;

  const playbook = (file: string, args: string[] = []) =>
    run(path.join(ansible!.bin, 'ansible-playbook'), ['-i', path.join(inventoryDir, 'control_plane.py'), '-e', `@${extraVars}`, ...args, file], {
      cwd: ansibleDir,
      env: { ...ansible!.env, KCP_API_URL: apiUrl, KCP_API_TOKEN: h!.adminToken, ANSIBLE_VAULT_PASSWORD_FILE: vaultPass },
      timeoutMs: 150_000,
    });
  const kumodLog = () => (existsSync(path.join(dir, 'kumod.log')) ? readFileSync(path.join(dir, 'kumod.log'), 'utf8').slice(-4000) : '(no kumod log)');
  const nodeStatus = async () => (await expectJson(await h!.request('GET', '/v1/policy/status'), 200)).nodes.find((n: { node_id: string }) => n.node_id === node?.id);
  const vaulted = async () => (await run(path.join(ansible!.bin, 'ansible-vault'), ['view', '--vault-password-file', vaultPass, vaultFile], { env: ansible!.env })).stdout.trim();
  const settingsToken = () => /node_token = '([^']+)'/.exec(readFileSync(path.join(cpDir, 'node_settings.lua'), 'utf8'))![1]!;

  beforeAll(async () => {
    ansible = await ensureAnsible('the playbooks against a running control plane');
    if (!ansible) return;
    const [apiPort, inboundPort, httpPort] = [await freePortForTest(), await freePortForTest(), await freePortForTest()];
    relayPort = await freePortForTest();
    const dkimDir = path.join(dir, 'opt/kumomta/etc/dkim');
    h = await startHarness({ CP_POLICY_DKIM_KEY_DIR: dkimDir, CP_NODE_STALE_MS: '60000' });
    const harness = h;
    await new Promise<void>((resolve) => {
      const server = serve({ fetch: harness.app.fetch, hostname: '127.0.0.1', port: apiPort }, () => resolve());
      closeApi = () => new Promise<void>((r) => server.close(() => r()));
    });
    apiUrl = `http://127.0.0.1:${apiPort}`;
    writeFileSync(vaultPass, 'test vault password\n', { mode: 0o600 });
    mkdirSync(inventoryDir);
    symlinkSync(path.join(ansibleDir, 'inventory/control_plane.py'), path.join(inventoryDir, 'control_plane.py'));
    extraVars = path.join(dir, 'extra-vars.json');
    // only what this machine needs differently: the node's id, token, key and control plane URL come
    // from the playbooks themselves (the API, the inventory, group_vars)
    writeFileSync(
      extraVars,
      JSON.stringify({
        ...localNodeVars(dir, release, {
          kumomta_node_relay_listen: `127.0.0.1:${relayPort}`,
          kumomta_node_inbound_listen: `127.0.0.1:${inboundPort}`,
          kumomta_node_http_listen: `127.0.0.1:${httpPort}`,
          kumomta_node_redis_url: h.ctx.config.redisUrl,
          kumomta_node_hostname: 'ansible-1.kumod.test',
          kumomta_node_poll_interval_seconds: 1,
          kumomta_node_dkim_key_dir: dkimDir,
          // the release's share/ where it is (ansible.test.ts has the role copy it)
          kumomta_node_share_src: '',
          kumomta_node_kumo_share_dir: release.shareDir,
        }),
        ansible_connection: 'local',
        ansible_become: false,
        kcp_host_vars_dir: path.join(inventoryDir, 'host_vars'),
        kcp_policy_wait_seconds: 60,
        // the config monitor's 10 s are not what is tested here: the check after the roll is
        kcp_runtime_settle_seconds: 2,
      }),
    );
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
    if (existsSync(ctl)) await run(ctl, ['stop']);
    await closeApi?.();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('add-node.yml registers, vaults, deploys, and the node runs its policy', async (ctx) => {
    if (!ansible) return ctx.skip();
    expect(added.status, `${shown(added)}\n--- kumod\n${kumodLog()}`).toBe(0);
    expect(added.stdout).toMatch(/TASK \[Wait until the node runs its current policy\][\s\S]*ok: \[ansible-1\]/);
    expect(node!.relay_port).toBe(relayPort);
    expect(await nodeStatus()).toMatchObject({ state: 'up_to_date', up_to_date: true, running_copy: 'generated', install_error: null });
    expect(readFileSync(path.join(cpDir, 'generated.lua.sha256'), 'utf8').trim()).toBe((await nodeStatus()).applied_sha256);
    // the token of POST /v1/nodes: in node_settings.lua and, encrypted, in the node's host_vars; never in the output
    const token = settingsToken();
    expect(token).toMatch(/^node_/);
    expect(readFileSync(vaultFile, 'utf8')).toMatch(/^\$ANSIBLE_VAULT;1\.1;AES256\n/);
    expect(await vaulted()).toBe(`kumomta_node_token: ${JSON.stringify(token)}`);
    expect(added.stdout + added.stderr).not.toContain(token);
  });

  it('rotate-node-token.yml rotates, restarts kumod on the new token, vaults it, and checks the node', async (ctx) => {
    if (!ansible || added.status !== 0) return ctx.skip();
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
    if (!ansible || added.status !== 0) return ctx.skip();
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
