/**
 * ansible/ for real (issue 15): the pinned Ansible from scripts/ensure-ansible.sh (cached in
 * .local/ansible-venv), then
 *   1. ansible-lint (production profile) and --syntax-check of every playbook pass;
 *   2. the dynamic inventory reads GET /v1/nodes (every page, with the operator token) from a local
 *      stand-in and groups the nodes by region and canary;
 *   3. the kumomta_node role, applied to this machine (connection local, no become, no systemd) with
 *      the kumod of KUMOD_BIN standing in for the package, lays down a node whose policy passes
 *      `kumod --validate`, starts kumod in the background (pid file, HTTP listener answering), and a
 *      second run changes nothing.
 * Without a Python 3.12 or a kumod the parts that need them say so loudly and skip.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKumod } from '../kumod/kumod-process.js';
import { kumoRelease, sayWhySkipped } from '../support/kumo-release.js';
import { freePortForTest } from '../support/ports.js';
import { ansibleDir, applyPlaybook, ensureAnsible, localNodeVars, root, run, shown, writeLocalPlaybook, type Ansible, type Run } from './ansible-helpers.js';

let ansible: Ansible | null = null;
let bin: string | null = null;
let ansibleEnv: Record<string, string> = {};

beforeAll(async () => {
  ansible = await ensureAnsible('the Ansible suite (control-plane/test/ansible)');
  if (!ansible) return;
  bin = ansible.bin;
  ansibleEnv = ansible.env;
}, 600_000);

const playbooks = readdirSync(ansibleDir).filter((f) => f.endsWith('.yml')).sort();

describe('ansible/: lint and syntax', () => {
  it('has the playbooks of the issue', () => {
    expect(playbooks).toEqual(expect.arrayContaining(['add-node.yml', 'provision-node.yml', 'roll-node-runtime.yml', 'rotate-node-token.yml', 'site.yml']));
  });

  it('ansible-lint passes on every role and playbook (production profile)', async (ctx) => {
    if (!bin) return ctx.skip();
    const r = await run(path.join(bin, 'ansible-lint'), ['--nocolor', '--offline'], { cwd: ansibleDir, env: ansibleEnv });
    expect(r.status, shown(r)).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Passed: 0 failure\(s\), 0 warning\(s\)/);
  }, 120_000);

  it('ansible-playbook --syntax-check passes on every playbook', async (ctx) => {
    if (!bin) return ctx.skip();
    for (const playbook of playbooks) {
      const r = await run(path.join(bin, 'ansible-playbook'), ['-i', 'localhost,', '--syntax-check', playbook], { cwd: ansibleDir, env: ansibleEnv });
      expect(r.status, `${playbook}: ${shown(r)}`).toBe(0);
    }
  }, 120_000);
});

describe('ansible/inventory/control_plane.py against GET /v1/nodes', () => {
  const token = `kcp_${'t'.repeat(40)}`;
  const node = (i: number, region: string, canary: boolean) => ({
    id: `00000000-0000-4000-8000-00000000000${i}`,
    name: `mta-${region}-${i}`,
    provider: 'hetzner',
    region,
    public_address: `203.0.113.${i}`,
    admin_url: null,
    relay_host: i === 3 ? `10.0.0.${i}` : null,
    relay_port: i === 3 ? 2626 : 2525,
    token_prefix: 'node_abc',
    monthly_cost_usd: null,
    last_seen_at: null,
    last_pull_at: null,
    canary,
    served_policy_version_id: null,
    served_at: null,
    applied_policy_version_id: null,
    applied_at: null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
  });
  const pages: Record<string, { items: unknown[]; next_cursor: string | null }> = {
    '': { items: [node(1, 'fsn1', true), node(2, 'fsn1', false)], next_cursor: 'c2' },
    c2: { items: [node(3, 'nbg1', false)], next_cursor: null },
  };
  const ip = (address: string, nodeId: number, state: string, bought: boolean) => ({ id: `ip-${address}`, address, node_id: `00000000-0000-4000-8000-00000000000${nodeId}`, state, provider_floating_ip_id: bought ? `${nodeId}7` : null });
  const ipPages: Record<string, { items: unknown[]; next_cursor: string | null }> = {
    '': { items: [ip('198.51.100.9/32', 1, 'active', true), ip('198.51.100.8', 1, 'warming', true)], next_cursor: 'i2' },
    // a retired one is gone from the interface; one registered by hand is the operator's to configure
    i2: { items: [ip('198.51.100.7', 1, 'retired', true), ip('203.0.113.50', 2, 'active', false), ip('2001:db8::5', 3, 'active', true)], next_cursor: null },
  };
  const seen: string[] = [];
  let server: Server;
  let url = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      seen.push(`${req.method} ${u.pathname}${u.search}`);
      if (req.headers.authorization !== `Bearer ${token}`) {
        res.writeHead(401, { 'content-type': 'application/problem+json' });
        return res.end(JSON.stringify({ title: 'Unauthorized', status: 401, detail: 'a valid bearer token is required' }));
      }
      const cursor = u.searchParams.get('cursor') ?? '';
      const page = u.pathname === '/v1/nodes' ? pages[cursor] : u.pathname === '/v1/ips' ? ipPages[cursor] : undefined;
      if (!page) {
        res.writeHead(404);
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(page));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  const script = path.join(ansibleDir, 'inventory/control_plane.py');
  const inventory = (env: Record<string, string>, args = ['--list']) => run('python3', [script, ...args], { env: { KCP_API_URL: url, KCP_API_TOKEN: token, KCP_API_TOKEN_FILE: '', ...env } });

  it('lists every page of nodes, grouped by region and canary, with what the roles need', async () => {
    const r = await inventory({});
    expect(r.status, shown(r)).toBe(0);
    const inv = JSON.parse(r.stdout);
    expect(seen).toEqual(['GET /v1/nodes?limit=200', 'GET /v1/nodes?limit=200&cursor=c2', 'GET /v1/ips?limit=200', 'GET /v1/ips?limit=200&cursor=i2']);
    expect(inv.kumomta_nodes.hosts).toEqual(['mta-fsn1-1', 'mta-fsn1-2', 'mta-nbg1-3']);
    expect(inv.region_fsn1.hosts).toEqual(['mta-fsn1-1', 'mta-fsn1-2']);
    expect(inv.region_nbg1.hosts).toEqual(['mta-nbg1-3']);
    expect(inv.canary.hosts).toEqual(['mta-fsn1-1']);
    expect(inv.not_canary.hosts).toEqual(['mta-fsn1-2', 'mta-nbg1-3']);
    expect(inv.provider_hetzner.hosts).toHaveLength(3);
    expect(inv._meta.hostvars['mta-nbg1-3']).toMatchObject({
      ansible_host: '203.0.113.3',
      kcp_node_id: '00000000-0000-4000-8000-000000000003',
      kcp_region: 'nbg1',
      kcp_canary: false,
      kcp_relay_host: '10.0.0.3',
      kcp_relay_port: 2626,
    });
    expect(inv._meta.hostvars['mta-fsn1-1']).toMatchObject({ kcp_canary: true, kcp_relay_port: 2525, kcp_floating_ips: ['198.51.100.8', '198.51.100.9'] });
    expect(inv._meta.hostvars['mta-fsn1-2'].kcp_floating_ips).toEqual([]);
    expect(inv._meta.hostvars['mta-nbg1-3'].kcp_floating_ips).toEqual(['2001:db8::5']);
  });

  it('reads the token from a file, answers --host, and is what ansible-inventory sees', async (ctx) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-inv-'));
    writeFileSync(path.join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    const r = await inventory({ KCP_API_TOKEN: '', KCP_API_TOKEN_FILE: path.join(dir, 'token') }, ['--host', 'mta-fsn1-2']);
    expect(r.status, shown(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kcp_node_id: '00000000-0000-4000-8000-000000000002', kcp_region: 'fsn1' });
    rmSync(dir, { recursive: true, force: true });
    if (!bin) return ctx.skip();
    const g = await run(path.join(bin, 'ansible-inventory'), ['-i', script, '--graph'], { cwd: ansibleDir, env: { ...ansibleEnv, KCP_API_URL: url, KCP_API_TOKEN: token } });
    expect(g.status, shown(g)).toBe(0);
    expect(g.stdout).toMatch(/@region_fsn1:\n[ |]+--mta-fsn1-1\n[ |]+--mta-fsn1-2\n/);
    expect(g.stdout).toMatch(/@canary:\n[ |]+--mta-fsn1-1\n/);
  }, 60_000);

  it('fails clearly without a token, with a refused token, and without a URL', async () => {
    const none = await inventory({ KCP_API_TOKEN: '' });
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('set KCP_API_TOKEN or KCP_API_TOKEN_FILE');
    const refused = await inventory({ KCP_API_TOKEN: 'kcp_wrong' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('HTTP 401 a valid bearer token is required');
    const noUrl = await inventory({ KCP_API_URL: '' });
    expect(noUrl.status).toBe(1);
    expect(noUrl.stderr).toContain('set KCP_API_URL');
  });
});

describe('the kumomta_node role applied to this machine (no systemd, the kumod of KUMOD_BIN)', () => {
  const release = kumoRelease();
  const dir = mkdtempSync(path.join(tmpdir(), 'kcp-ansible-node-'));
  const prefix = path.join(dir, 'opt/kumomta');
  const policyDir = path.join(prefix, 'etc/policy');
  const cpDir = path.join(policyDir, 'cp');
  const token = `node_${'s'.repeat(40)}`;
  const ctl = path.join(prefix, 'sbin/kcp-kumodctl');
  let ports = { relay: 0, inbound: 0, http: 0 };
  let first: Run | null = null;
  let skip = '';

  let playbookFile = '';
  const apply = () => applyPlaybook(ansible!, playbookFile);

  beforeAll(async () => {
    if (!bin) skip = 'no Ansible (above)';
    else if (!release.kumod || !release.shareDir) skip = 'no kumod: set KUMOD_BIN (scripts/test.sh uses ../shared/kumomta/<release>/sbin/kumod) with its share/ beside it';
    if (skip) {
      sayWhySkipped('the kumomta_node role on this machine', skip);
      return;
    }
    ports = { relay: await freePortForTest(), inbound: await freePortForTest(), http: await freePortForTest() };
    playbookFile = writeLocalPlaybook(
      dir,
      'node.yml',
      localNodeVars(dir, release, {
        kumomta_node_control_plane_url: 'http://127.0.0.1:9',
        kumomta_node_id: '00000000-0000-4000-8000-00000000000a',
        kumomta_node_token: token,
        kumomta_node_policy_public_key_hex: 'ab'.repeat(32),
        kumomta_node_relay_listen: `127.0.0.1:${ports.relay}`,
        kumomta_node_inbound_listen: `127.0.0.1:${ports.inbound}`,
        kumomta_node_http_listen: `127.0.0.1:${ports.http}`,
        kumomta_node_gateway_cidrs: ['127.0.0.1', '10.0.0.2', 'fd00::2'],
        kumomta_node_control_plane_cidrs: ['127.0.0.1', '10.0.0.5'],
        kumomta_node_floating_ips: ['203.0.113.7', '2001:db8::7'],
        kumomta_node_egress_overrides: { smtp_port: 2526, prohibited_hosts: {} },
        // nothing would take its report (the control plane URL above answers nothing); the live
        // suite (kumomta-node-live.int.test.ts) runs it on deploy against a real control plane
        kumomta_node_egress_probe_on_deploy: false,
      }),
    );
    first = await apply();
  }, 180_000);

  afterAll(async () => {
    if (existsSync(ctl)) await run(ctl, ['stop']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies cleanly and lays the node out as mta-nodes/README.md says', (ctx) => {
    if (skip) return ctx.skip();
    expect(first!.status, shown(first!)).toBe(0);
    expect(first!.stdout).toMatch(/failed=0/);
    expect(readFileSync(path.join(policyDir, 'init.lua'), 'utf8')).toBe(readFileSync(path.join(root, 'mta-nodes/policy/init.lua'), 'utf8'));
    for (const f of readdirSync(path.join(root, 'lua-policy/src')).filter((f) => /^cp_.*\.lua$/.test(f))) {
      expect(readFileSync(path.join(cpDir, f), 'utf8'), f).toBe(readFileSync(path.join(root, 'lua-policy/src', f), 'utf8'));
    }
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    expect(mode(path.join(cpDir, 'node_settings.lua'))).toBe('600');
    expect(mode(path.join(prefix, 'etc/dkim'))).toBe('700');
    expect(mode(path.join(dir, 'spool'))).toBe('700');
    const settings = readFileSync(path.join(cpDir, 'node_settings.lua'), 'utf8');
    expect(settings).toContain(`node_token = '${token}',`);
    expect(settings).toContain(`relay_listen = '127.0.0.1:${ports.relay}',`);
    expect(settings).toContain("gateway_cidrs = { '127.0.0.1', '10.0.0.2', 'fd00::2' },");
    expect(settings).toMatch(/egress_overrides = \{\n\s+prohibited_hosts = \{\},\n\s+smtp_port = 2526,\n\s+\},/);
    // the token never reaches Ansible's output
    expect(first!.stdout + first!.stderr).not.toContain(token);
  });

  it('writes the firewall, the Floating IPs and log retention', (ctx) => {
    if (skip) return ctx.skip();
    const nft = readFileSync(path.join(dir, 'nftables.conf'), 'utf8');
    expect(nft).toContain(`tcp dport ${ports.inbound} accept\n`);
    expect(nft).toContain(`ip saddr { 127.0.0.1, 10.0.0.2 } tcp dport ${ports.relay} accept`);
    expect(nft).toContain(`ip6 saddr { fd00::2 } tcp dport ${ports.relay} accept`);
    expect(nft).toContain(`ip saddr { 127.0.0.1, 10.0.0.5 } tcp dport ${ports.http} accept`);
    expect(nft).toMatch(/policy drop;/);
    const netplan = readFileSync(path.join(dir, 'netplan-floating-ips.yaml'), 'utf8');
    expect(netplan).toContain('- 203.0.113.7/32');
    expect(netplan).toContain('- 2001:db8::7/64');
    expect(readFileSync(path.join(dir, 'kcp-kumod-logs'), 'utf8')).toMatch(/find .*logs -type f -mtime \+7 -delete/);
    expect(readFileSync(path.join(dir, 'kcp-kumod'), 'utf8')).toContain(path.join(dir, 'kumod.log'));
  });

  it('installs the port-25 probe and runs it every 15 minutes as the node user', async (ctx) => {
    if (skip) return ctx.skip();
    const probe = path.join(prefix, 'sbin/kcp-egress-probe');
    expect(readFileSync(probe, 'utf8')).toBe(readFileSync(path.join(root, 'mta-nodes/bin/kcp-egress-probe'), 'utf8'));
    expect((statSync(probe).mode & 0o777).toString(8)).toBe('755');
    const cron = readFileSync(path.join(dir, 'kcp-egress-probe'), 'utf8');
    const line = cron.split('\n').find((l) => l.includes('kcp-egress-probe --settings'))!;
    expect(line).toMatch(new RegExp(`^([0-9]|1[0-4])-59/15 \\* \\* \\* \\* ${userInfo().username} ${probe} --settings ${cpDir}/node_settings\\.lua --timeout 2 --target=127\\.0\\.0\\.1:9 2>&1 \\| logger -t kcp-egress-probe$`));
    // what cron would run reads the role's node_settings.lua (the probe prints its targets without posting)
    const dry = await run(probe, ['--settings', path.join(cpDir, 'node_settings.lua'), '--timeout', '2', '--target', '127.0.0.1:9', '--dry-run']);
    expect(dry.status, shown(dry)).toBe(0);
    expect(dry.stdout).toMatch(/^refused 127\.0\.0\.1:9 \[127\.0\.0\.1\]/);
    expect(dry.stdout).toContain('dry run: would report as node 00000000-0000-4000-8000-00000000000a to http://127.0.0.1:9\n');
  });

  it('the installed policy passes kumod --validate', async (ctx) => {
    if (skip) return ctx.skip();
    const r = await runKumod(path.join(policyDir, 'init.lua'), '--validate', { KCP_POLICY_DIR: cpDir });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 60_000);

  it('kumod runs in the background with a pid file and its HTTP listener answers', async (ctx) => {
    if (skip) return ctx.skip();
    const status = await run(ctl, ['status']);
    expect(status.status, shown(status)).toBe(0);
    const pid = Number(readFileSync(path.join(dir, 'kumod.pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).not.toThrow();
    let answered = 0;
    for (let i = 0; i < 30 && answered !== 200; i++) {
      answered = await fetch(`http://127.0.0.1:${ports.http}/metrics`).then((r) => r.status, () => 0);
      if (answered !== 200) await new Promise((r) => setTimeout(r, 500));
    }
    expect(answered, readFileSync(path.join(dir, 'kumod.log'), 'utf8').slice(-3000)).toBe(200);
  }, 30_000);

  it('a second run changes nothing and leaves the same kumod running', async (ctx) => {
    if (skip) return ctx.skip();
    const pid = readFileSync(path.join(dir, 'kumod.pid'), 'utf8');
    const again = await apply();
    expect(again.status, shown(again)).toBe(0);
    expect(again.stdout, shown(again)).toMatch(/localhost\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0/);
    expect(readFileSync(path.join(dir, 'kumod.pid'), 'utf8')).toBe(pid);
  }, 120_000);
});

describe('every node setting, everywhere', () => {
  const readme = readFileSync(path.join(root, 'mta-nodes/README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## node_settings.lua'), readme.indexOf('## The node channel'));
  const documented = [...table.matchAll(/^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([a-z_]+)`/g)].map((k) => k[1]!)).sort();

  it('the role writes every key of mta-nodes/README.md from a variable of its own', () => {
    expect(documented.length).toBeGreaterThan(15);
    const template = readFileSync(path.join(ansibleDir, 'roles/kumomta_node/templates/node_settings.lua.j2'), 'utf8');
    const written = [...template.matchAll(/^\s+'([a-z_]+)': kumomta_node_([a-z_]+)/gm)];
    expect(written.map((m) => m[1]).sort()).toEqual(documented);
    for (const m of written) expect(m[2], m[1]).toBe(m[1] === 'node_id' || m[1] === 'node_token' ? m[1]!.slice(5) : m[1]);
    const defaults = readFileSync(path.join(ansibleDir, 'roles/kumomta_node/defaults/main.yml'), 'utf8');
    for (const k of documented) expect(defaults, k).toMatch(new RegExp(`^kumomta_node_${k.replace(/^node_/, '')}:`, 'm'));
  });

  it('mta-nodes/node_settings.example.lua shows every key', () => {
    const example = readFileSync(path.join(root, 'mta-nodes/node_settings.example.lua'), 'utf8');
    const keys = [...example.matchAll(/^\s+(?:-- )?([a-z_]+) = /gm)].map((m) => m[1]!).sort();
    expect(keys).toEqual(documented);
  });
});

describe('mta-nodes/systemd/kumod.service', () => {
  const unit = readFileSync(path.join(root, 'mta-nodes/systemd/kumod.service'), 'utf8');

  it('runs kumod with UMask=0077, an open-files limit and a restart policy', () => {
    expect(unit).toMatch(/^UMask=0077$/m);
    expect(unit).toMatch(/^LimitNOFILE=\d+$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^ExecStart=\/opt\/kumomta\/sbin\/kumod --policy \/opt\/kumomta\/etc\/policy\/init\.lua --user kumod$/m);
  });

  it('is a unit systemd-analyze verify accepts without a word', async (ctx) => {
    const release = kumoRelease();
    const which = await run('sh', ['-c', 'command -v systemd-analyze']);
    if (which.status !== 0 || !release.kumod) {
      sayWhySkipped('systemd-analyze verify of kumod.service', which.status !== 0 ? 'no systemd-analyze on this machine' : 'no kumod (KUMOD_BIN) for its ExecStart');
      return ctx.skip();
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-unit-'));
    // verify wants the binary to exist: the release's kumod stands in for /opt/kumomta/sbin/kumod
    writeFileSync(path.join(dir, 'kumod.service'), unit.replace('/opt/kumomta/sbin/kumod', release.kumod));
    const r = await run('systemd-analyze', ['verify', path.join(dir, 'kumod.service')]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status, shown(r)).toBe(0);
    expect(r.stderr.trim(), shown(r)).toBe('');
  });
});

describe('mta-nodes/systemd/kcp-egress-probe.{service,timer}', () => {
  const service = readFileSync(path.join(root, 'mta-nodes/systemd/kcp-egress-probe.service'), 'utf8');
  const timer = readFileSync(path.join(root, 'mta-nodes/systemd/kcp-egress-probe.timer'), 'utf8');

  it('runs the probe as the kumod user, every 15 minutes, spread out', () => {
    expect(service).toMatch(/^Type=oneshot$/m);
    expect(service).toMatch(/^User=kumod$/m);
    expect(service).toMatch(/^ExecStart=\/opt\/kumomta\/sbin\/kcp-egress-probe --settings \/opt\/kumomta\/etc\/policy\/cp\/node_settings\.lua$/m);
    expect(timer).toMatch(/^OnUnitActiveSec=15min$/m);
    expect(timer).toMatch(/^RandomizedDelaySec=\S+$/m);
  });

  it('are units systemd-analyze verify accepts without a word', async (ctx) => {
    const which = await run('sh', ['-c', 'command -v systemd-analyze']);
    if (which.status !== 0) {
      sayWhySkipped('systemd-analyze verify of the probe units', 'no systemd-analyze on this machine');
      return ctx.skip();
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-unit-'));
    writeFileSync(path.join(dir, 'kcp-egress-probe.service'), service.replace('/opt/kumomta/sbin/kcp-egress-probe', path.join(root, 'mta-nodes/bin/kcp-egress-probe')).replace('User=kumod', 'User=root'));
    writeFileSync(path.join(dir, 'kcp-egress-probe.timer'), timer);
    const r = await run('systemd-analyze', ['verify', path.join(dir, 'kcp-egress-probe.timer'), path.join(dir, 'kcp-egress-probe.service')]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status, shown(r)).toBe(0);
    expect(r.stderr.trim(), shown(r)).toBe('');
  });
  it("with the role's drop-in, whose ExecStart quoting systemd reads back as one executable path", async (ctx) => {
    const which = await run('sh', ['-c', 'command -v systemd-analyze']);
    if (which.status !== 0 || !bin) {
      sayWhySkipped('the probe unit with the role\'s drop-in', which.status !== 0 ? 'no systemd-analyze on this machine' : 'no Ansible (above)');
      return ctx.skip();
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-unit-'));
    // an executable path with a space in it: only correct quoting lets systemd find it
    const exe = path.join(dir, 'probe bin', 'kcp-egress-probe');
    mkdirSync(path.dirname(exe));
    copyFileSync(path.join(root, 'mta-nodes/bin/kcp-egress-probe'), exe);
    chmodSync(exe, 0o755);
    writeFileSync(path.join(dir, 'kcp-egress-probe.service'), service.replace('User=kumod', 'User=root'));
    mkdirSync(path.join(dir, 'kcp-egress-probe.service.d'));
    const play = path.join(dir, 'render.yml');
    writeFileSync(play, JSON.stringify([{
      hosts: 'localhost', connection: 'local', gather_facts: false,
      vars: { kumomta_node_user: 'root', kumomta_node_egress_probe_argv: [exe, '--settings', path.join(dir, "node's settings.lua"), '--timeout', '10', '--target=mx.example:25', '--target=%$'] },
      tasks: [{ name: 'Render the drop-in', 'ansible.builtin.template': { src: path.join(ansibleDir, 'roles/kumomta_node/templates/kcp-egress-probe-dropin.conf.j2'), dest: path.join(dir, 'kcp-egress-probe.service.d/kcp.conf'), mode: '0644' } }],
    }]));
    const rendered = await run(path.join(bin, 'ansible-playbook'), ['-i', 'localhost,', play], { cwd: dir, env: { ...ansibleEnv, ANSIBLE_CONFIG: '', ANSIBLE_FILTER_PLUGINS: path.join(ansibleDir, 'roles/kumomta_node/filter_plugins') } });
    expect(rendered.status, shown(rendered)).toBe(0);
    const dropIn = readFileSync(path.join(dir, 'kcp-egress-probe.service.d/kcp.conf'), 'utf8');
    expect(dropIn).toMatch(/^ExecStart=$/m);
    // systemd's own quoting, not the shell's: double quotes, % and $ doubled
    expect(dropIn).toContain(`ExecStart="${exe}" --settings "${path.join(dir, "node's settings.lua")}" --timeout 10 --target=mx.example:25 "--target=%%$$"\n`);
    const r = await run('systemd-analyze', ['verify', path.join(dir, 'kcp-egress-probe.service')]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status, shown(r)).toBe(0);
    expect(r.stderr.trim(), shown(r)).toBe('');
  }, 60_000);
});
