/**
 * The operator's side of the live playbook suites: a control plane answering on a loopback port, an
 * operator token, a vault password, and the dynamic inventory in a directory of the test's own (so the
 * host_vars the playbooks write beside it, kcp_host_vars_dir, are the ones Ansible reads next), with
 * `playbook()` running ansible-playbook from ansible/ as an operator would.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ContextOverrides } from '../../src/context.js';
import { startHarness, type Harness } from '../support/harness.js';
import { freePortForTest } from '../support/ports.js';
import { serveApi, type ServedApi } from '../support/serve-api.js';
import { ansibleDir, localNodeVars, run, type Ansible, type Run } from './ansible-helpers.js';

export interface PlaybookRig {
  /** everything of the test lives under it: the node's prefix, its logs, the inventory, the vault password */
  dir: string;
  h: Harness;
  api: ServedApi;
  inventoryDir: string;
  /** extra variables for every playbook run (write them with setVars) */
  setVars(vars: Record<string, unknown>): void;
  playbook(file: string, args?: string[]): Promise<Run>;
  /** the dynamic inventory as Ansible runs it */
  inventory(args: string[]): Promise<Run>;
  vaultFile(host: string): string;
  /** the decrypted vault file of a host */
  vaulted(host: string): Promise<string>;
  /** the tail of the node's kumod diagnostic log, for failure messages */
  kumodLog(): string;
  close(): Promise<void>;
}

export async function startPlaybookRig(
  ansible: Ansible,
  opts: { prefix: string; env?: (apiUrl: string, dir: string) => Record<string, string>; overrides?: ContextOverrides },
): Promise<PlaybookRig> {
  const dir = mkdtempSync(path.join(tmpdir(), opts.prefix));
  const port = await freePortForTest();
  const h = await startHarness(opts.env?.(`http://127.0.0.1:${port}`, dir) ?? {}, opts.overrides ? { overrides: opts.overrides } : {});
  const api = await serveApi(h.app, port);
  const vaultPass = path.join(dir, 'vault-pass');
  writeFileSync(vaultPass, 'test vault password\n', { mode: 0o600 });
  const inventoryDir = path.join(dir, 'inventory');
  mkdirSync(inventoryDir);
  symlinkSync(path.join(ansibleDir, 'inventory/control_plane.py'), path.join(inventoryDir, 'control_plane.py'));
  const extraVars = path.join(dir, 'extra-vars.json');
  writeFileSync(extraVars, '{}');
  const vaultFile = (host: string) => path.join(inventoryDir, 'host_vars', host, 'vault.yml');
  const ctl = path.join(dir, 'opt/kumomta/sbin/kcp-kumodctl');
  return {
    dir,
    h,
    api,
    inventoryDir,
    setVars: (vars) => writeFileSync(extraVars, JSON.stringify({ kcp_host_vars_dir: path.join(inventoryDir, 'host_vars'), ...vars })),
    playbook: (file, args = []) =>
      run(path.join(ansible.bin, 'ansible-playbook'), ['-i', path.join(inventoryDir, 'control_plane.py'), '-e', `@${extraVars}`, ...args, file], {
        cwd: ansibleDir,
        env: { ...ansible.env, KCP_API_URL: api.url, KCP_API_TOKEN: h.adminToken, ANSIBLE_VAULT_PASSWORD_FILE: vaultPass },
        timeoutMs: 150_000,
      }),
    inventory: (args) => run('python3', [path.join(inventoryDir, 'control_plane.py'), ...args], { env: { KCP_API_URL: api.url, KCP_API_TOKEN: h.adminToken, KCP_API_TOKEN_FILE: '' } }),
    vaultFile,
    vaulted: async (host) => (await run(path.join(ansible.bin, 'ansible-vault'), ['view', '--vault-password-file', vaultPass, vaultFile(host)], { env: ansible.env })).stdout.trim(),
    kumodLog: () => (existsSync(path.join(dir, 'kumod.log')) ? readFileSync(path.join(dir, 'kumod.log'), 'utf8').slice(-4000) : '(no kumod log)'),
    close: async () => {
      if (existsSync(ctl)) await run(ctl, ['stop']);
      await api.close();
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The variables of a node laid down on this machine that talks to the rig's control plane: its
 * listeners on free loopback ports, the rig's Redis, DKIM keys where the control plane writes them,
 * the release's share/ where it is, and connection local; the node's id, token and key come from the
 * playbooks themselves (the API, the inventory, group_vars).
 */
export async function liveNodeVars(rig: PlaybookRig, release: { kumod: string | null; shareDir: string | null }, hostname: string, extra: Record<string, unknown> = {}): Promise<{ vars: Record<string, unknown>; relayPort: number; httpPort: number }> {
  const [relayPort, inboundPort, httpPort] = [await freePortForTest(), await freePortForTest(), await freePortForTest()];
  const vars = {
    ...localNodeVars(rig.dir, release, {
      kumomta_node_relay_listen: `127.0.0.1:${relayPort}`,
      kumomta_node_inbound_listen: `127.0.0.1:${inboundPort}`,
      kumomta_node_http_listen: `127.0.0.1:${httpPort}`,
      kumomta_node_redis_url: rig.h.ctx.config.redisUrl,
      kumomta_node_hostname: hostname,
      kumomta_node_poll_interval_seconds: 1,
      kumomta_node_dkim_key_dir: liveDkimDir(rig.dir),
      // the release's share/ where it is (ansible.test.ts has the role copy it)
      kumomta_node_share_src: '',
      kumomta_node_kumo_share_dir: release.shareDir,
      ...extra,
    }),
    ansible_connection: 'local',
    ansible_become: false,
    kcp_policy_wait_seconds: 60,
  };
  return { vars, relayPort, httpPort };
}

/** Where the node of liveNodeVars keeps its DKIM keys: give it to the harness as CP_POLICY_DKIM_KEY_DIR. */
export const liveDkimDir = (dir: string): string => path.join(dir, 'opt/kumomta/etc/dkim');
