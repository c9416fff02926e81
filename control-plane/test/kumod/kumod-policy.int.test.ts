/**
 * The node policy in a real kumod (KUMOD_BIN; scripts/test.sh finds ../shared/kumomta/<release>):
 *   - every runtime module's own self-test, run by kumod --script the way KumoMTA runs its helpers';
 *   - kumod --validate on the staged bootstrap: a good module passes, a bad module or bad settings
 *     fail with every problem printed;
 *   - kumod --script resolving our queue configs, pools, sources and egress paths with kumod's own
 *     types, including KumoMTA's shaping data for a site whose MX (from a DNS server of the test's)
 *     names a provider.
 */
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';
import { buildPolicyModel, type PolicyInputs } from '../../src/domain/policy/policy-model.js';
import { renderPolicyModule } from '../../src/render/policy-module.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { kumoRelease, releaseAtLeast, sayWhySkipped } from '../support/kumo-release.js';
import { installModule, offlineSettings, stageNode, type NodeSettings, type StagedNode } from '../support/node-dir.js';
import { runKumod } from './kumod-process.js';

const release = kumoRelease();
if (!release.kumod || !release.shareDir) {
  sayWhySkipped('the real-kumod policy suite (module self-tests, --validate, --script resolution)', 'KUMOD_BIN names no kumod with its share directory (scripts/test.sh sets it from ../shared/kumomta when that is there)');
}
const MODULES = ['cp_typing', 'cp_data', 'cp_routing', 'cp_shaping', 'cp_pull', 'cp_logs', 'cp_settings'];
const PREMIUM = '11111111-1111-4111-8111-111111111111';
const fixture = JSON.parse(readFileSync(path.join(projectRoot(), 'control-plane/test/fixtures/scenarios/small-fleet.json'), 'utf8')) as PolicyInputs;

/** The small-fleet module with its DKIM keys in the node's own key directory, and the keys written. */
function moduleWithKeys(n: StagedNode): string {
  const dkimKeyDir = path.join(n.root, 'dkim');
  const model = buildPolicyModel({ ...fixture, dkimKeyDir });
  for (const [domain, d] of Object.entries(model.dkim)) {
    mkdirSync(path.dirname(d.key_file), { recursive: true });
    const { privateKey } = d.algorithm === 'ed25519-sha256' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(d.key_file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    expect(domain).toBeTruthy();
  }
  return renderPolicyModule(model).text;
}

function stage(extra: Partial<NodeSettings> = {}, generated: ((n: StagedNode) => string) | null = moduleWithKeys): StagedNode {
  const n = stageNode((root) => offlineSettings(root, release.shareDir!, extra));
  if (generated) installModule(n, generated(n));
  return n;
}

describe.skipIf(!release.kumod || !release.shareDir)(`the node policy in a real kumod ${release.version ?? ''}`, () => {
  let dns: DnsServer;
  beforeAll(async () => {
    // gmail.test's MX is named like Google's, so KumoMTA's shaping data calls its site `google`
    dns = await startDnsServer({
      mx: { 'gmail.test': [{ exchange: 'alt1.gmail-smtp-in.l.google.com' }], 'contoso.test': [{ exchange: 'contoso-test.mail.protection.outlook.com' }], 'plain.test': [{ exchange: 'mx.plain.test' }] },
      a: { 'alt1.gmail-smtp-in.l.google.com': ['127.0.0.1'], 'contoso-test.mail.protection.outlook.com': ['127.0.0.1'], 'mx.plain.test': ['127.0.0.1'] },
    });
  });
  afterAll(async () => dns?.close());

  it('every runtime module passes its own self-test in kumod', async () => {
    const n = stage({}, null);
    const script = path.join(n.policyDir, 'selftest.lua');
    writeFileSync(
      script,
      `local kumo = require 'kumo'
package.path = '${n.cpDir}/?.lua;${release.shareDir}/?.lua;' .. package.path
kumo.on('main', function(...)
  for _, name in ipairs { ... } do
    local m = require(name)
    local ok, err = pcall(m.test, m)
    print(name .. ': ' .. (ok and 'ok' or ('FAILED ' .. tostring(err))))
  end
end)
`,
    );
    const r = await runKumod(script, '--script', {}, ['--', ...MODULES]);
    expect(r.status, r.stderr).toBe(0);
    for (const m of MODULES) expect(r.stdout, r.stdout).toContain(`${m}: ok`);
  });

  it('--validate accepts the bootstrap with a verified module whose DKIM keys are on disk', async () => {
    const n = stage();
    const r = await runKumod(path.join(n.policyDir, 'init.lua'), '--validate', n.env);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).not.toContain('ERROR');
  });

  it('--validate rejects an installed module with problems, printing every one, and a module naming missing keys', async () => {
    const bad = stage({}, (n) => moduleWithKeys(n).replace("tier = 'standard'", "tier = 'gold'").replace("algorithm = 'ed25519-sha256'", "algorithm = 'md5'"));
    const r = await runKumod(path.join(bad.policyDir, 'init.lua'), '--validate', bad.env);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/cp: ERROR: tenant 22222222-.*'gold'/);
    expect(r.stdout).toMatch(/cp: ERROR: dkim news\.beta\.example: .*'md5'/);
    const golden = stage({}, () => readFileSync(path.join(projectRoot(), 'lua-policy/golden/small-fleet.lua'), 'utf8'));
    const g = await runKumod(path.join(golden.policyDir, 'init.lua'), '--validate', golden.env);
    expect(g.status).not.toBe(0);
    expect(g.stdout).toContain('key file /opt/kumomta/etc/dkim/acme.example/kcp1.key is missing');
  });

  it('--validate passes a node that has no module yet, saying that it refuses mail until it pulls one', async () => {
    const n = stage({}, null);
    const r = await runKumod(path.join(n.policyDir, 'init.lua'), '--validate', n.env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('no installed policy module');
  });

  it('--validate refuses settings it cannot read, naming every problem', async () => {
    const n = stage({ control_plane_url: 'ftp://cp', poll_interval_seconds: 0 } as Partial<NodeSettings>, null);
    const r = await runKumod(path.join(n.policyDir, 'init.lua'), '--validate', n.env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('control_plane_url must be');
    expect(r.stderr).toContain('poll_interval_seconds must be at least 1');
  });

  it('--validate refuses a plain-http control plane that is not on loopback, and takes https or loopback http', async () => {
    const bad = stage({ control_plane_url: 'http://10.0.0.5:8080' }, null);
    const r = await runKumod(path.join(bad.policyDir, 'init.lua'), '--validate', bad.env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('control_plane_url http://10.0.0.5:8080 is plain http to a host that is not loopback');
    for (const url of ['https://cp.example.net:8443', 'http://127.0.0.1:8080']) {
      const good = stage({ control_plane_url: url }, null);
      const ok = await runKumod(path.join(good.policyDir, 'init.lua'), '--validate', good.env);
      expect(ok.status, `${url}: ${ok.stderr}`).toBe(0);
    }
  });

  it("kumod's HTTP client verifies the control plane's certificate: refused unknown, trusted through SSL_CERT_FILE (it has no CA or client-certificate option)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-kumod-tls-'));
    execFileSync('bash', [path.join(projectRoot(), 'scripts/api-tls-cert.sh'), dir, 'localhost'], { stdio: 'ignore' });
    const server = createHttpsServer({ cert: readFileSync(path.join(dir, 'cert.pem')), key: readFileSync(path.join(dir, 'key.pem')), minVersion: 'TLSv1.2' }, (_req, res) => res.end('hello over tls'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const script = path.join(dir, 'get.lua');
    writeFileSync(
      script,
      `local kumo = require 'kumo'
kumo.on('main', function()
  local client = kumo.http.build_client { user_agent = 'kcp-tls-check', timeout = '10 seconds' }
  local ok, res = pcall(function() return client:get('https://127.0.0.1:${port}/health'):send() end)
  if ok then print('STATUS ' .. res:status_code() .. ' ' .. res:text()) else print('REFUSED ' .. tostring(res)) end
end)
`,
    );
    try {
      const unknown = await runKumod(script, '--script', { SSL_CERT_FILE: path.join(dir, 'no-such-bundle.pem') });
      expect(unknown.stdout, unknown.stderr).toContain('REFUSED');
      const trusted = await runKumod(script, '--script', { SSL_CERT_FILE: path.join(dir, 'ca.pem') });
      expect(trusted.stdout, trusted.stderr).toContain('STATUS 200 hello over tls');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("--script: kumod resolves our queue configs, pools, sources and paths, with KumoMTA's shaping underneath", async () => {
    const n = stage({ egress_overrides: { smtp_port: 2526, prohibited_hosts: [] } });
    const script = path.join(n.policyDir, 'resolve.lua');
    writeFileSync(
      script,
      `local kumo = require 'kumo'
dofile('${path.join(n.policyDir, 'init.lua')}')
local cp_data = require 'cp_data'
local cp_routing = require 'cp_routing'
kumo.on('main', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  local out = {}
  local qc = kumo.invoke_get_queue_config('${PREMIUM}@gmail.test')
  out.premium_pool = qc.egress_pool
  out.refresh = qc.refresh_strategy
  local data = cp_data.load { generated = '${n.cpDir}/generated.lua' }
  -- kumod 2025.12.02 resolves pools and sources through the registered handlers; before that the
  -- same functions build them, and kumod's own constructors type-check the result
  if kumo.invoke_get_egress_pool then
    out.pool_via = 'kumod'
    out.pool = kumo.invoke_get_egress_pool(qc.egress_pool)
    out.source = kumo.invoke_get_egress_source('ip-203-0-113-10')
  else
    out.pool_via = 'constructors'
    assert(cp_routing.egress_pool(data, qc.egress_pool))
    assert(cp_routing.egress_source(data, 'ip-203-0-113-10'))
    out.pool = { entries = cp_routing.pool_entries(data, qc.egress_pool) }
    out.source = cp_routing.source_params(data, 'ip-203-0-113-10')
  end
  local function path(domain, source, site)
    local p = kumo.invoke_get_egress_path_config(domain, source, site)
    return { provider_name = p.provider_name, rates = p.additional_source_selection_rates, smtp_port = p.smtp_port,
      connection_limit = p.connection_limit, max_deliveries_per_connection = p.max_deliveries_per_connection,
      max_connection_rate = p.max_connection_rate, prohibited = p.prohibited_hosts, refresh = p.refresh_strategy }
  end
  out.gmail = path('gmail.test', 'ip-203-0-113-30', 'alt1.gmail-smtp-in.l.google.com')
  out.m365 = path('contoso.test', 'ip-203-0-113-30', 'contoso-test.mail.protection.outlook.com')
  out.plain = path('plain.test', 'ip-203-0-113-30', 'mx.plain.test')
  out.active = path('gmail.test', 'ip-203-0-113-10', 'alt1.gmail-smtp-in.l.google.com')
  out.log_hook = path('kcp.log_hook', 'unspecified', 'kcp.log_hook')
  local lq = kumo.invoke_get_queue_config('kcp.log_hook')
  out.log_hook_protocol = lq.protocol
  print('@@json@@' .. kumo.serde.json_encode(out))
end)
`,
    );
    const r = await runKumod(script, '--script', n.env);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout.slice(r.stdout.indexOf('@@json@@') + 8));
    expect(out.premium_pool).toMatch(/^premium-/);
    expect(out.refresh).toBe('Epoch');
    expect(out.pool_via).toBe(releaseAtLeast(release, '2025.12.02') ? 'kumod' : 'constructors');
    expect(JSON.stringify(out.pool)).toContain('ip-203-0-113-10');
    expect(JSON.stringify(out.source)).toContain('203.0.113.10');
    // KumoMTA's shaping.toml names the provider from the MX; the warm-up cap is the provider's one bucket
    expect(out.gmail.provider_name).toBe('google');
    expect(out.gmail.rates).toMatchObject({ 'kcp-warmup-ip-203-0-113-30-gmail': '96/d,max_burst=4' });
    expect(out.gmail.max_deliveries_per_connection).toBe(50);
    expect(out.m365.provider_name).toBe('office365');
    expect(out.m365.rates).toMatchObject({ 'kcp-warmup-ip-203-0-113-30-microsoft': '96/d,max_burst=4' });
    expect(out.plain.rates).toMatchObject({ 'kcp-warmup-ip-203-0-113-30-other': '192/d,max_burst=8' });
    expect(JSON.stringify(out.active.rates ?? {})).not.toContain('kcp-warmup');
    for (const p of [out.gmail, out.plain]) {
      expect(p.smtp_port).toBe(2526);
      expect(p.refresh).toBe('Epoch');
    }
    // the log hook: its own path, node-local limits, and the helper's custom_lua queue
    expect(out.log_hook.max_deliveries_per_connection).toBe(100000);
    expect(JSON.stringify(out.log_hook.connection_limit)).toContain('16');
    expect(out.log_hook.smtp_port).toBe(25);
    expect(out.log_hook_protocol).toMatchObject({ custom_lua: { constructor: 'make.kcp.log_hook', batch_size: 200 } });
  });
});
