/**
 * The node runtime (lua-policy/src/cp_runtime.lua) and bootstrap (mta-nodes/policy/init.lua), run in
 * a real Lua 5.4 against the strict kumo double, with a generated module (the small-fleet golden).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';
import { runLua } from '../support/lua.js';

const GOLDEN = path.join(projectRoot(), 'lua-policy/golden/small-fleet.lua');
const PREMIUM = '11111111-1111-4111-8111-111111111111';
const STANDARD = '22222222-2222-4222-8222-222222222222';
const LOCKED = '33333333-3333-4333-8333-333333333333';

function lua(body: string, args: string[] = [GOLDEN]): any {
  const r = runLua(`local json = require 'json'\nlocal h = require 'harness'\nh.boot(arg[1], { last_known_good = arg[2] })\nlocal double = require 'kumo_double'\nlocal out = (function() ${body} end)()\nio.write(json.encode(out))`, args);
  if (r.status !== 0) throw new Error(`lua failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('node runtime in Lua 5.4 with the kumo double', () => {
  it('a premium tenant\'s external mail leaves through its premium IP, signed, with the trusted headers gone', () => {
    const r = lua(`
      local rx = h.receive { tenant = '${PREMIUM.toUpperCase()}', lane = 'external', from = 'Acme <news@ACME.example>' }
      return { rx = rx, route = h.route('gmail.com', rx.meta.tenant, rx.meta.campaign) }`);
    expect(r.rx.meta).toEqual({ tenant: PREMIUM, kcp_lane: 'external' });
    expect(r.rx.headers).toEqual(['From', 'To', 'Subject']);
    expect(r.rx.rejected).toBeUndefined();
    expect(r.rx.signed_with).toMatchObject({ signer: 'rsa-sha256', params: { domain: 'acme.example', selector: 'kcp1', key: '/opt/kumomta/etc/dkim/acme.example/kcp1.key' } });
    expect(r.route.egress_pool).toMatch(/^premium-/);
    expect(r.route.sources).toEqual([{ name: 'ip-203-0-113-10', source_address: '203.0.113.10', ehlo_domain: 'mta10.example.net', weight: 100 }]);
  });

  it('a standard tenant is signed with its Ed25519 key and spread over its weighted shard', () => {
    const r = lua(`
      local rx = h.receive { tenant = '${STANDARD}', lane = 'external', from = 'news@news.beta.example' }
      return { rx = rx, route = h.route('outlook.com', rx.meta.tenant, rx.meta.campaign) }`);
    expect(r.rx.signed_with).toMatchObject({ signer: 'ed25519', params: { domain: 'news.beta.example', selector: 's2026' } });
    expect(r.route.sources.map((s: any) => [s.source_address, s.weight])).toEqual([['203.0.113.20', 100], ['203.0.113.21', 50]]);
  });

  it('a locked tenant\'s external mail is refused; its warming mail goes to the rehabilitation pool', () => {
    const r = lua(`
      local ext = h.receive { tenant = '${LOCKED}', lane = 'external' }
      local warm = h.receive { tenant = '${LOCKED}', lane = 'warming' }
      return { ext = ext, warm = warm, route = h.route('gmail.com', warm.meta.tenant, warm.meta.campaign) }`);
    expect(r.ext.rejected).toEqual({ code: 550, message: '5.7.1 external sending is locked for this sender: warming lane only' });
    expect(r.warm.rejected).toBeUndefined();
    expect(r.warm.meta).toEqual({ tenant: LOCKED, kcp_lane: 'warming', campaign: 'warming' });
    expect(r.route.egress_pool).toMatch(/^rehabilitation-/);
    expect(r.route.sources.map((s: any) => s.source_address)).toEqual(['203.0.113.30']);
  });

  it('unknown or forged tenants get the safe default route; nothing is dropped', () => {
    const r = lua(`
      local unknown = h.receive { tenant = '99999999-9999-4999-8999-999999999999', lane = 'external' }
      local forged = h.receive { tenant = "x'); os.exit(1) --", lane = 'sideways' }
      local none = h.receive {}
      return { unknown = unknown, forged = forged, none = none, route = h.route('gmail.com', nil, nil), log_hook = h.route('cp.log_hook', nil, nil) }`);
    for (const k of ['unknown', 'forged', 'none']) {
      expect(r[k].meta).toEqual({ kcp_lane: 'external' });
      expect(r[k].headers).toEqual(['From', 'To', 'Subject']);
    }
    expect(r.route.egress_pool).toMatch(/^rehabilitation-/);
    // another helper's queue: our handler deferred, kumod's default applies
    expect(r.log_hook.egress_pool ?? null).toBeNull();
  });

  it('external mail waits for its tenant\'s shared hourly budget; warming mail does not', () => {
    const r = lua(`
      local function through(spec)
        local rx = h.receive(spec)
        local msg = double.message { headers = {} }
        for k, v in pairs(rx.meta) do msg:set_meta(k, v) end
        double.fire('throttle_insert_ready_queue', msg)
      end
      through { tenant = '${PREMIUM}', lane = 'external' }
      through { tenant = '${STANDARD}', lane = 'external' }
      through { tenant = '${STANDARD}', lane = 'warming' }
      through { tenant = '99999999-9999-4999-8999-999999999999' }
      return double.throttled`);
    expect(r).toEqual([
      { name: `lua-user-throttle-kcp-ext-${PREMIUM}`, spec: '20000/h', tenant: PREMIUM },
      { name: `lua-user-throttle-kcp-ext-${STANDARD}`, spec: '5000/h', tenant: STANDARD },
    ]);
  });

  it('egress paths: per-provider shaping, and warm-up caps on warming IPs only', () => {
    const r = lua(`
      return {
        warm_gmail = h.path('ip-203-0-113-30', '(alt1|alt2)?.gmail-smtp-in.l.google.com'),
        warm_ms = h.path('ip-203-0-113-30', 'mx1.hotmail.com.olc.protection.outlook.com'),
        warm_other = h.path('ip-203-0-113-30', 'mx.example.org'),
        active_gmail = h.path('ip-203-0-113-10', 'gmail-smtp-in.l.google.com'),
      }`);
    expect(r.warm_gmail).toMatchObject({ source_selection_rate: '96/d,max_burst=4', connection_limit: 10, refresh_strategy: 'Epoch' });
    expect(r.warm_ms).toMatchObject({ source_selection_rate: '96/d,max_burst=4', connection_limit: 8 });
    expect(r.warm_other.source_selection_rate).toBe('192/d,max_burst=8');
    expect(r.active_gmail.source_selection_rate).toBeUndefined();
  });

  it('the inbound listener logs and drops reports for our return-path domains only', () => {
    const r = lua(`
      local function ld(d)
        local v = double.fire('get_listener_domain', d, '0.0.0.0:25', {})
        if v == nil then return 'none' end
        return { kind = double.kind_of(v), log_oob = v.log_oob, log_arf = v.log_arf, relay_to = v.relay_to }
      end
      local old = ld('bounces.acme.example')
      return { old = old, ours = h.cp.listener_domain(h.data, 'BOUNCES.acme.example', '2026.06.23-f3af1cd0') and {
          log_oob = h.cp.listener_domain(h.data, 'bounces.acme.example', '2026.06.23-f3af1cd0').log_oob } or 'none',
        other = ld('random.example'), bare = ld('acme.example') }`);
    // a node of unknown (possibly 2025.03.19) vintage gets the booleans every release understands
    expect(r.old).toEqual({ kind: 'ListenerDomain', log_oob: true, log_arf: true, relay_to: false });
    expect(r.ours).toEqual({ log_oob: 'LogThenDrop' });
    expect(r.other).toBe('none');
    expect(r.bare).toBe('none');
  });

  it('an unknown egress source is an error (kumod retries) rather than a send from some default address', () => {
    const r = lua(`return { ok = pcall(double.fire, 'get_egress_source', 'ip-10-0-0-1') }`);
    expect(r.ok).toBe(false);
  });

  it('a broken or hostile generated module is ignored in favour of the last known good', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-gen-'));
    const cases = {
      syntax: 'return { format = 1,',
      code: "os.execute('touch /tmp/kcp-pwned') return {}",
      shape: "return { format = 1, sources = {}, pools = { p = { { name = 'nope', weight = 1 } } }, tenants = {}, dkim = {} }",
      format: "return { format = 99, sources = {}, pools = {}, tenants = {}, dkim = {} }",
    };
    for (const [name, text] of Object.entries(cases)) {
      const bad = path.join(dir, `${name}.lua`);
      writeFileSync(bad, text);
      const r = lua(`return { route = h.route('gmail.com', '${PREMIUM}', nil), logs = double.logs }`, [bad, GOLDEN]);
      expect(r.route.egress_pool, name).toMatch(/^premium-/);
      expect(r.logs[0].text, name).toContain('cp: ignoring');
    }
    // with nothing usable at all, every message still has a route (kumod's own default)
    const r = lua(`return { route = h.route('gmail.com', '${PREMIUM}', nil) }`, [path.join(dir, 'syntax.lua'), path.join(dir, 'missing.lua')]);
    expect(r.route.egress_pool ?? null).toBeNull();
  });
});

describe('the kumo double is as strict as kumod', () => {
  it.each([
    ["kumo.make_queue_config { egress_pol = 'x' }", 'unknown field'],
    ["kumo.make_queue_config { retry_interval = 'soon' }", 'invalid duration'],
    ["kumo.make_egress_path { source_selection_rate = '100/hours' }", 'invalid throttle'],
    ["kumo.make_egress_path { max_message_rate = '0/h' }", 'invalid throttle'],
    ["kumo.make_egress_pool { entries = {} }", 'name is required'],
    ["kumo.on('get_egress_pool', function() end)", 'already has a handler'],
    ["kumo.on('get_egress_source', function() end); double.fire('get_egress_source', 'x')", ''],
  ])('%s fails', (code, message) => {
    const r = runLua(`local h = require 'harness'\nh.boot(arg[1])\nlocal double = require 'kumo_double'\nlocal kumo = require 'kumo'\n${code}`, [GOLDEN]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it('a typed handler that returns a plain table is refused', () => {
    const r = runLua(`local double = require 'kumo_double'\ndouble.install()\nlocal kumo = require 'kumo'\nkumo.on('get_egress_pool', function(n) return { name = n } end)\ndouble.fire('get_egress_pool', 'p')`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('not a EgressPool');
  });
});

describe('the node bootstrap', () => {
  it('with full node settings, init starts the policy pull task with them', () => {
    const bootstrap = path.join(projectRoot(), 'mta-nodes/policy/init.lua');
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-node-'));
    writeFileSync(path.join(dir, 'node_settings.lua'), "return { control_plane_url = 'https://cp.example', node_id = 'n1', node_token = 'node_t', policy_public_key_hex = '00', redis_url = 'redis://10.0.0.9/' }");
    const r = runLua(
      `local json = require 'json'
       local double = require 'kumo_double'
       double.install()
       dofile(arg[1])
       double.fire('init')
       local out = {}
       for _, c in ipairs(double.calls) do
         if c.name == 'spawn_task' or c.name == 'configure_redis_throttles' then out[#out + 1] = { name = c.name, arg = c.args[1] } end
       end
       io.write(json.encode(out))`,
      [bootstrap],
      { KCP_POLICY_DIR: dir },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { name: 'configure_redis_throttles', arg: { node: 'redis://10.0.0.9/' } },
      { name: 'spawn_task', arg: { event_name: 'cp.poll', args: { url: 'https://cp.example/v1/nodes/n1/policy', token: 'node_t', public_key_hex: '00', interval_seconds: 5, keys_url: 'https://cp.example/v1/nodes/n1/dkim-keys', key_dir: '/opt/kumomta/etc/dkim' } } },
    ]);
  });

  it('posts delivery records to the control plane in batches, retrying (4xx) on any failure', () => {
    const bootstrap = path.join(projectRoot(), 'mta-nodes/policy/init.lua');
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-node-'));
    writeFileSync(path.join(dir, 'node_settings.lua'), "return { control_plane_url = 'https://cp.example', node_id = 'n1', node_token = 'node_t', policy_public_key_hex = '00' }");
    const r = runLua(
      `local json = require 'json'
       local double = require 'kumo_double'
       double.install()
       dofile(arg[1])
       local hook = double.log_hooks[1]
       local sender = hook.constructor('kcp.log_hook', nil, nil)
       local function record(id) local m = double.message { headers = {} }; m:set_meta('log_record', { type = 'Delivery', id = id }); return m end
       double.http_responses = { { status = 200 }, { status = 503, body = 'down' } }
       local ok1, res1 = pcall(sender.send_batch, sender, { record('a'), record('b') })
       local ok2, err2 = pcall(sender.send_batch, sender, { record('c') })
       io.write(json.encode { name = hook.name, batch_size = hook.batch_size, params = hook.log_parameters,
         first = { ok = ok1, result = res1 }, second = { ok = ok2, code = err2.code, message = err2.message }, request = double.requests[1] })`,
      [bootstrap],
      { KCP_POLICY_DIR: dir },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ name: 'kcp', batch_size: 200, params: { meta: ['tenant', 'kcp_lane'], headers: ['Message-ID'] } });
    expect(out.first).toEqual({ ok: true, result: 'posted 2 records' });
    expect(out.second).toMatchObject({ ok: false, code: 421 });
    expect(out.second.message).toContain('503');
    expect(out.request).toMatchObject({ url: 'https://cp.example/v1/events/kumo', method: 'POST', headers: { Authorization: 'Bearer node_t', 'Content-Type': 'application/json' } });
    expect(JSON.parse(out.request.body)).toEqual([{ type: 'Delivery', id: 'a' }, { type: 'Delivery', id: 'b' }]);
  });

  it('registers every handler once per state, sets up listeners in init, and can run again in a new state', () => {
    const bootstrap = path.join(projectRoot(), 'mta-nodes/policy/init.lua');
    const r = runLua(
      `local json = require 'json'
       local double = require 'kumo_double'
       local names = {}
       for state = 1, 2 do
         package.loaded.cp_runtime = nil
         double.install()
         dofile(arg[1])
         for name, list in pairs(double.handlers) do names[name] = #list end
       end
       double.fire('init')
       local calls = {}
       for _, c in ipairs(double.calls) do calls[#calls + 1] = c.name end
       io.write(json.encode({ handlers = names, calls = calls }))`,
      [bootstrap],
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.handlers).toEqual({ init: 1, 'cp.poll': 1, get_listener_domain: 1, throttle_insert_ready_queue: 1, smtp_server_message_received: 1, get_queue_config: 1, get_egress_pool: 1, get_egress_source: 1, get_egress_path_config: 1 });
    expect(out.calls).toEqual(['define_spool', 'define_spool', 'configure_local_logs', 'start_esmtp_listener', 'start_esmtp_listener', 'start_http_listener']);
  });
});
