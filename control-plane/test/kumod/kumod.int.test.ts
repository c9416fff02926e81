/**
 * The same bootstrap, runtime and generated module in a real kumod, when KUMOD_BIN names one:
 *   - `kumod --policy init.lua --validate` (runs init and every validate_config handler);
 *   - `kumod --policy script.lua --script`, whose `main` resolves queue configs, pools, sources and
 *     paths through kumod's own invoke_get_* functions, so kumod's type checks see our values.
 * KumoMTA cannot be built here, so without KUMOD_BIN this suite says loudly that it did not run.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';

const KUMOD = process.env.KUMOD_BIN;
if (!KUMOD) {
  process.stderr.write('\n[kumod] SKIPPED: KUMOD_BIN is not set, so the real-kumod checks (--validate of the node bootstrap, a --script run resolving queue, pool, source and path configs through kumod, and the submission gateway relaying into a running kumod) did not run. Point KUMOD_BIN at a kumod binary to run them.\n\n');
}

function stage(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kcp-kumod-'));
  copyFileSync(path.join(projectRoot(), 'mta-nodes/policy/init.lua'), path.join(dir, 'init.lua'));
  copyFileSync(path.join(projectRoot(), 'lua-policy/src/cp_runtime.lua'), path.join(dir, 'cp_runtime.lua'));
  copyFileSync(path.join(projectRoot(), 'lua-policy/golden/small-fleet.lua'), path.join(dir, 'generated.lua'));
  return dir;
}

function kumod(dir: string, args: string[]) {
  return spawnSync(KUMOD!, ['--user', userInfo().username, ...args], {
    encoding: 'utf8',
    env: { ...process.env, KCP_POLICY_DIR: dir, KUMOD_LOG: 'error,lua=info' },
    timeout: 60_000,
  });
}

describe.skipIf(!KUMOD)('policy in a real kumod (KUMOD_BIN)', () => {
  it('--validate accepts the bootstrap with a generated module', () => {
    const dir = stage();
    const r = kumod(dir, ['--policy', path.join(dir, 'init.lua'), '--validate']);
    expect(r.status, r.stderr).toBe(0);
  });

  it('--script: kumod resolves our configs with its own types', () => {
    const dir = stage();
    writeFileSync(
      path.join(dir, 'script.lua'),
      `local kumo = require 'kumo'
dofile('${path.join(dir, 'init.lua')}')
kumo.on('main', function()
  local qc = kumo.invoke_get_queue_config('11111111-1111-4111-8111-111111111111@gmail.com')
  assert(tostring(qc.egress_pool):match('^premium%-'), 'premium pool expected')
  local pool = kumo.invoke_get_egress_pool(qc.egress_pool)
  local src = kumo.invoke_get_egress_source('ip-203-0-113-30')
  local path = kumo.invoke_get_egress_path_config('gmail.com', 'ip-203-0-113-30', 'gmail-smtp-in.l.google.com')
  print('ok', qc.egress_pool, pool ~= nil, src ~= nil, path ~= nil)
end)
`,
    );
    const r = kumod(dir, ['--policy', path.join(dir, 'script.lua'), '--script']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('ok');
  });
});

describe.skipIf(!KUMOD)('the submission gateway relaying to a real kumod (KUMOD_BIN)', () => {
  it('kumod answers 250 to the relayed message, and the gateway passes it on', async () => {
    const { startHarness, expectJson, testConfig } = await import('../support/harness.js');
    const { startSubmissionGateway } = await import('../../src/gateway/submission-gateway.js');
    const { freePortForTest, waitForPortForTest } = await import('../support/ports.js');
    const nodemailer = (await import('nodemailer')).default;
    const { spawn, execFileSync } = await import('node:child_process');
    const dir = stage();
    const [relay, inbound, http] = [await freePortForTest(), await freePortForTest(), await freePortForTest()];
    writeFileSync(
      path.join(dir, 'node_settings.lua'),
      `return { relay_listen = '127.0.0.1:${relay}', inbound_listen = '127.0.0.1:${inbound}', http_listen = '127.0.0.1:${http}', hostname = 'kumod.test', spool_dir = '${dir}/spool', log_dir = '${dir}/logs', gateway_cidrs = { '127.0.0.1' } }\n`,
    );
    const daemon = spawn(KUMOD!, ['--user', userInfo().username, '--policy', path.join(dir, 'init.lua')], { env: { ...process.env, KCP_POLICY_DIR: dir, KUMOD_LOG: 'error' }, stdio: 'inherit' });
    const h = await startHarness();
    const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
    execFileSync('bash', [path.join(projectRoot(), 'scripts/self-signed-cert.sh'), tls, 'localhost'], { stdio: 'ignore' });
    try {
      await waitForPortForTest(relay, 60_000);
      const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
      const node = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'kumod', region: 'fsn1', public_address: '198.51.100.9', relay_host: '127.0.0.1', relay_port: relay } }), 201);
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: '203.0.113.9', node_id: node.id, rdns_name: 'mta9.example.net', state: 'active' } }), 201);
      await expectJson(await h.request('PUT', `/v1/pools/${pool.id}/members/${ip.id}`, { body: { weight: 100 } }), 200);
      const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'kumod-acme', display_name: 'Acme' } }), 201);
      const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: 'acme.example' } }), 201);
      await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
      await expectJson(await h.request('POST', `/v1/tenants/${t.id}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'test' } }), 200);
      await h.ctx.db.updateTable('tenant_trust').set({ score: 88, locked: false, lock_kind: null, locked_at: null, lock_reason: null }).where('tenant_id', '=', t.id).execute();
      const creds = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/smtp-credentials`, { body: {} }), 201);
      const cfg = testConfig({ DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway', CP_SMTP_TLS_CERT_FILE: `${tls}/cert.pem`, CP_SMTP_TLS_KEY_FILE: `${tls}/key.pem`, CP_SMTP_SUBMISSION_PORT: '0', CP_SMTP_TLS_PORT: '-1' });
      const gw = await startSubmissionGateway(h.ctx, cfg.gateway);
      try {
        const info = await nodemailer
          .createTransport({ host: '127.0.0.1', port: gw.submissionPort, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: creds.username, pass: creds.password } })
          .sendMail({ from: 'sales@acme.example', to: 'reader@example.org', subject: 'via kumod', text: 'hello' });
        expect(info.response).toMatch(/^250 /);
      } finally {
        await gw.close();
      }
    } finally {
      daemon.kill('SIGTERM');
      await h.close();
    }
  }, 120_000);
});
