/**
 * Helpers of the Ansible suites: processes run asynchronously (so HTTP servers in the test process keep
 * answering), scripts/ensure-ansible.sh, and a playbook that applies the kumomta_node role to this
 * machine (connection local, no become, no systemd, every path under a temp directory).
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/project-root.js';
import { sayWhySkipped } from '../support/kumo-release.js';

export const root = projectRoot();
export const ansibleDir = path.join(root, 'ansible');

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

export const shown = (r: Run) => `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

export interface Ansible {
  /** the venv's bin directory */
  bin: string;
  /** environment for ansible-* commands: the venv first on PATH, no colours, nothing of the operator's */
  env: Record<string, string>;
}

/** scripts/ensure-ansible.sh; null (and said loudly) when this machine has no Python for it. */
export async function ensureAnsible(what: string): Promise<Ansible | null> {
  const r = await run('bash', [path.join(root, 'scripts/ensure-ansible.sh')], { timeoutMs: 600_000 });
  if (r.status === 3) {
    sayWhySkipped(what, r.stderr.trim() || 'scripts/ensure-ansible.sh found no Python 3.12 or newer');
    return null;
  }
  if (r.status !== 0) throw new Error(`scripts/ensure-ansible.sh failed: ${shown(r)}`);
  const bin = r.stdout.trim().split('\n').pop()!;
  return {
    bin,
    env: {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      NO_COLOR: '1',
      ANSIBLE_LOCALHOST_WARNING: 'false',
      ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false',
      ANSIBLE_PYTHON_INTERPRETER: path.join(bin, 'python'),
      ANSIBLE_CONFIG: path.join(ansibleDir, 'ansible.cfg'),
      KCP_API_URL: '',
      KCP_API_TOKEN: '',
      KCP_API_TOKEN_FILE: '',
    },
  };
}

/** The user the tests run as and its primary group: who owns what a role lays down without become. */
export function localUser(): { user: string; group: string } {
  return { user: userInfo().username, group: spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim() };
}

/** kumomta_node's variables for a node under dir, run as this user without systemd. */
export function localNodeVars(dir: string, release: { kumod: string | null; shareDir: string | null }, extra: Record<string, unknown>): Record<string, unknown> {
  const { user, group } = localUser();
  return {
    kumomta_node_install_method: 'binary',
    kumomta_node_binary_src: release.kumod,
    kumomta_node_share_src: release.shareDir,
    kumomta_node_prefix: path.join(dir, 'opt/kumomta'),
    kumomta_node_use_systemd: false,
    kumomta_node_manage_user: false,
    kumomta_node_user: user,
    kumomta_node_group: group,
    kumomta_node_file_owner: user,
    kumomta_node_file_group: group,
    kumomta_node_spool_dir: path.join(dir, 'spool'),
    kumomta_node_log_dir: path.join(dir, 'logs'),
    kumomta_node_pid_file: path.join(dir, 'kumod.pid'),
    kumomta_node_diagnostic_log: path.join(dir, 'kumod.log'),
    kumomta_node_netplan_file: path.join(dir, 'netplan-floating-ips.yaml'),
    kumomta_node_nftables_conf: path.join(dir, 'nftables.conf'),
    kumomta_node_cron_dir: dir,
    kumomta_node_logrotate_dir: dir,
    // no internet here: a port nothing listens on stands in for the world's MX hosts
    kumomta_node_egress_probe_targets: ['127.0.0.1:9'],
    kumomta_node_egress_probe_timeout_seconds: 2,
    ...extra,
  };
}

/** Write <dir>/<name> (JSON is YAML) applying the role (kumomta_node unless named) to localhost, then post_tasks if any. */
export function writeLocalPlaybook(dir: string, name: string, vars: Record<string, unknown>, postTasks: unknown[] = [], role = 'kumomta_node'): string {
  const file = path.join(dir, name);
  const play = [{ name: `${role} on this machine`, hosts: 'localhost', connection: 'local', gather_facts: false, become: false, vars, roles: [role], post_tasks: postTasks }];
  writeFileSync(file, JSON.stringify(play, null, 2));
  return file;
}

export function applyPlaybook(a: Ansible, file: string, env: Record<string, string> = {}): Promise<Run> {
  return run(path.join(a.bin, 'ansible-playbook'), ['-i', 'localhost,', file], {
    cwd: path.dirname(file),
    env: { ...a.env, ANSIBLE_ROLES_PATH: path.join(ansibleDir, 'roles'), ANSIBLE_CONFIG: '', ...env },
    timeoutMs: 150_000,
  });
}
