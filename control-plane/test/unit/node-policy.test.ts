/**
 * The node side in plain Lua 5.4 against the kumo double (lua-policy/test/kumo_double.lua), which
 * follows kumod: the real bootstrap and runtime, staged as on a node, with KumoMTA's own policy-extras
 * of the release under test and a generated module (the small-fleet golden). The same behaviour is
 * proved in a real kumod by control-plane/test/kumod/.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';
import { runLua } from '../support/lua.js';
import { installModule, offlineSettings, stageNode, type NodeSettings, type StagedNode } from '../support/node-dir.js';
import { kumoRelease, sayWhySkipped } from '../support/kumo-release.js';

const GOLDEN = readFileSync(path.join(projectRoot(), 'lua-policy/golden/small-fleet.lua'), 'utf8');
const PREMIUM = '11111111-1111-4111-8111-111111111111';
const STANDARD = '22222222-2222-4222-8222-222222222222';
const LOCKED = '33333333-3333-4333-8333-333333333333';
const share = kumoRelease().shareDir;
if (!share) sayWhySkipped('the node runtime tests in the kumo double', "they load KumoMTA's policy-extras, and no release directory was found (set KUMOD_BIN or KUMO_SHARE_DIR)");

function node(opts: { generated?: string | null; settings?: Partial<NodeSettings> } = {}): StagedNode {
  return stageNode((root) => offlineSettings(root, share!, opts.settings), opts.generated === null ? {} : { generated: opts.generated ?? GOLDEN });
}

interface BootOpts {
  release?: string;
  keysNeedNotExist?: boolean;
  /** Lua expression for double.shaping (what KumoMTA's shaping data says of a site) */
  shaping?: string;
}

/** Run `body` after booting the staged node in the double; returns what body returns, as JSON. */
function lua(n: StagedNode, body: string, opts: BootOpts = {}): any {
  const boot = `{ release = ${opts.release ? `'${opts.release}'` : 'nil'}, keys_need_not_exist = ${opts.keysNeedNotExist ?? true}, shaping = ${opts.shaping ?? 'nil'} }`;
  const r = runLua(`local json = require 'json'\nlocal h = require 'harness'\nlocal double = h.boot(arg[1], ${boot})\nlocal out = (function() ${body} end)()\nio.write('\\n@@json@@', json.encode(out))`, [n.policyDir], n.env);
  if (r.status !== 0) throw new Error(`lua failed: ${r.stderr}`);
  // the policy may print (validate_config does); the result follows the marker
  return JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('@@json@@') + 8));
}

describe.skipIf(!share)('node runtime in Lua 5.4 with the kumo double', () => {
  const n = node();

  it("a premium tenant's external mail leaves through its premium IP, signed, with the trusted headers gone", () => {
    const r = lua(n, `
      local rx = h.receive { tenant = '${PREMIUM.toUpperCase()}', lane = 'external', from = 'Acme <news@ACME.example>' }
      return { rx = rx, route = h.route('gmail.com', rx.meta.tenant, rx.meta.campaign) }`);
    expect(r.rx.meta).toMatchObject({ tenant: PREMIUM, kcp_lane: 'external' });
    expect(r.rx.headers).toEqual(['DKIM-Signature', 'From', 'To', 'Subject']);
    expect(r.rx.rejected).toBeUndefined();
    expect(r.rx.signed_with).toMatchObject({ signer: 'rsa-sha256', params: { domain: 'acme.example', selector: 'kcp1', key: '/opt/kumomta/etc/dkim/acme.example/kcp1.key' } });
    expect(r.route.egress_pool).toMatch(/^premium-/);
    expect(r.route.sources).toEqual([{ name: 'ip-203-0-113-10', source_address: '203.0.113.10', ehlo_domain: 'mta10.example.net', weight: 100 }]);
  });

  it('a standard tenant is signed with its Ed25519 key and spread over its weighted shard', () => {
    const r = lua(n, `
      local rx = h.receive { tenant = '${STANDARD}', lane = 'external', from = 'news@news.beta.example' }
      return { rx = rx, route = h.route('outlook.com', rx.meta.tenant, rx.meta.campaign) }`);
    expect(r.rx.signed_with).toMatchObject({ signer: 'ed25519', params: { domain: 'news.beta.example', selector: 's2026' } });
    expect(r.route.sources.map((s: any) => [s.source_address, s.weight])).toEqual([['203.0.113.20', 100], ['203.0.113.21', 50]]);
  });

  it('a From header with two addresses is signed for the first one (kumod raises on .domain of it)', () => {
    const r = lua(n, `return h.receive { tenant = '${PREMIUM}', lane = 'external', from = '"Sales, EU" <eu@acme.example>, us@acme.example' }`);
    expect(r.rejected).toBeUndefined();
    expect(r.error).toBeUndefined();
    expect(r.signed_with.params.domain).toBe('acme.example');
  });

  it('a sender domain the module has no key for (verified since it was published) waits with a 4xx, never leaves unsigned', () => {
    const r = lua(n, `return h.receive { tenant = '${PREMIUM}', lane = 'external', from = 'news@verified-later.example' }`);
    expect(r.rejected).toEqual({ code: 451, message: '4.7.0 this node has no DKIM key for the sender domain yet: try again later' });
    expect(r.signed_with).toBeUndefined();
  });

  it("a locked tenant's external mail is refused; its warming mail goes to the rehabilitation pool", () => {
    const r = lua(n, `
      local ext = h.receive { tenant = '${LOCKED}', lane = 'external' }
      local warm = h.receive { tenant = '${LOCKED}', lane = 'warming' }
      return { ext = ext, warm = warm, route = h.route('gmail.com', warm.meta.tenant, warm.meta.campaign) }`);
    expect(r.ext.rejected).toEqual({ code: 550, message: '5.7.1 external sending is locked for this sender: warming lane only' });
    expect(r.warm.rejected).toBeUndefined();
    expect(r.warm.meta).toMatchObject({ tenant: LOCKED, kcp_lane: 'warming', campaign: 'warming' });
    expect(r.route.egress_pool).toMatch(/^rehabilitation-/);
    expect(r.route.sources.map((s: any) => s.source_address)).toEqual(['203.0.113.30']);
  });

  it('unknown or forged tenants get the safe default route; nothing is dropped', () => {
    const r = lua(n, `
      local unknown = h.receive { tenant = '99999999-9999-4999-8999-999999999999', lane = 'external' }
      local forged = h.receive { tenant = "x'); os.exit(1) --", lane = 'sideways' }
      local none = h.receive {}
      return { unknown = unknown, forged = forged, none = none, route = h.route('gmail.com', nil, nil), log_hook = h.route('kcp.log_hook', nil, nil) }`);
    for (const k of ['unknown', 'forged', 'none']) {
      expect(r[k].meta.tenant).toBeUndefined();
      expect(r[k].meta.kcp_lane).toBe('external');
      expect(r[k].headers).toEqual(['DKIM-Signature', 'From', 'To', 'Subject']);
    }
    expect(r.route.egress_pool).toMatch(/^rehabilitation-/);
    // the log hook's queue belongs to policy-extras.log_hooks: its custom_lua protocol, no pool of ours
    expect(r.log_hook.egress_pool ?? null).toBeNull();
  });

  it('reports arriving on the inbound listener can name no tenant: the headers go, the meta is never set', () => {
    const r = lua(n, `return h.receive { tenant = '${PREMIUM}', lane = 'external', via = h.INBOUND_VIA, to = 'bounce@bounces.acme.example' }`);
    expect(r.meta.tenant).toBeUndefined();
    expect(r.meta.kcp_lane).toBeUndefined();
    expect(r.headers).not.toContain('X-KCP-Tenant');
    expect(r.rejected).toBeUndefined();
  });

  it("external mail spends its tenant's shared hourly budget once; warming mail, log records and retries do not", () => {
    const r = lua(n, `
      local function through(spec, protocol)
        local rx = h.receive(spec)
        local msg = double.message {}
        for k, v in pairs(rx.meta) do msg:set_meta(k, v) end
        msg:set_meta('reception_protocol', protocol or 'ESMTP')
        double.fire('throttle_insert_ready_queue', msg)
        return msg
      end
      local m = through { tenant = '${PREMIUM}', lane = 'external' }
      double.fire('throttle_insert_ready_queue', m) -- a retry after a transient failure
      through { tenant = '${STANDARD}', lane = 'external' }
      through { tenant = '${STANDARD}', lane = 'warming' }
      through({ tenant = '${STANDARD}', lane = 'external' }, 'LogRecord')
      through { tenant = '99999999-9999-4999-8999-999999999999' }
      return double.throttled`);
    expect(r).toEqual([
      { name: `lua-user-throttle-kcp-ext-${PREMIUM}`, spec: '20000/h', tenant: PREMIUM, delayed: false },
      { name: `lua-user-throttle-kcp-ext-${STANDARD}`, spec: '5000/h', tenant: STANDARD, delayed: false },
    ]);
  });

  it('egress paths: KumoMTA shaping first, then warm-up caps named per (IP, provider class), then the node overrides', () => {
    const shaping = `function(domain, source, site)
      if site:find('google', 1, true) then return { provider_name = 'google', connection_limit = 5, max_deliveries_per_connection = 50 } end
      if site:find('outlook', 1, true) then return { provider_name = 'office365', connection_limit = 5 } end
      return { connection_limit = 3 }
    end`;
    const withOverrides = node({ settings: { egress_overrides: { smtp_port: 2526, prohibited_hosts: [] } } });
    const r = lua(withOverrides, `
      return {
        warm_gmail = h.path('gmail.com', 'ip-203-0-113-30', '(alt1|alt2)?.gmail-smtp-in.l.google.com'),
        warm_m365 = h.path('contoso.example', 'ip-203-0-113-30', 'contoso-example.mail.protection.outlook.com'),
        warm_other = h.path('example.org', 'ip-203-0-113-30', 'mx.example.org'),
        active_gmail = h.path('gmail.com', 'ip-203-0-113-10', 'gmail-smtp-in.l.google.com'),
        log_hook = h.path('kcp.log_hook', 'unspecified', 'kcp.log_hook'),
      }`, { shaping });
    expect(r.warm_gmail).toMatchObject({ provider_name: 'google', connection_limit: 5, max_deliveries_per_connection: 50, refresh_strategy: 'Epoch', smtp_port: 2526 });
    expect(r.warm_gmail.additional_source_selection_rates).toEqual({ 'kcp-warmup-ip-203-0-113-30-gmail': '96/d,max_burst=4' });
    // every Microsoft 365 tenant domain is its own MX site: one bucket for all of them, by name
    expect(r.warm_m365.additional_source_selection_rates).toEqual({ 'kcp-warmup-ip-203-0-113-30-microsoft': '96/d,max_burst=4' });
    expect(r.warm_other.additional_source_selection_rates).toEqual({ 'kcp-warmup-ip-203-0-113-30-other': '192/d,max_burst=8' });
    expect(r.warm_other.connection_limit).toBe(3);
    expect(r.active_gmail.additional_source_selection_rates).toBeUndefined();
    expect(r.active_gmail.source_selection_rate).toBeUndefined();
    // the log hook: node-local limits (not one Redis-shared limit for the fleet), long connections
    expect(r.log_hook).toMatchObject({ connection_limit: 'local:16', max_connection_rate: 'local:100/s', max_deliveries_per_connection: 100000 });
    expect(r.log_hook.smtp_port).toBeUndefined();
  });

  it.each([
    ['2025.03.19', true],
    ['2025.05.06', 'LogThenDrop'],
  ])('kumod %s: reports for our return-path domains are logged, then dropped (%s)', (release, disposition) => {
    const r = lua(n, `
      local function ld(d)
        local v = double.fire('get_listener_domain', d, '0.0.0.0:25', {})
        if v == nil then return 'none' end
        local p = double.params_of(v)
        return { kind = double.kind_of(v), log_oob = p.log_oob, log_arf = p.log_arf, relay_to = p.relay_to }
      end
      return { ours = ld('BOUNCES.acme.example'), other = ld('random.example'), bare = ld('acme.example') }`, { release });
    expect(r.ours).toEqual({ kind: 'ListenerDomain', log_oob: disposition, log_arf: disposition, relay_to: false });
    expect(r.other).toBe('none');
    expect(r.bare).toBe('none');
  });

  it('an IP that no longer carries mail still resolves (a cached pool may name it); a name never ours raises', () => {
    const r = lua(n, `
      local quarantined = double.params_of(double.fire('get_egress_source', 'ip-203-0-113-40'))
      return { quarantined = quarantined.source_address, unknown = pcall(double.fire, 'get_egress_source', 'ip-10-0-0-1') }`);
    expect(r).toEqual({ quarantined: '203.0.113.40', unknown: false });
  });

  it('a DKIM key file that is missing makes reception fail (kumod answers 421: the client retries)', () => {
    const r = lua(n, `return h.receive { tenant = '${PREMIUM}', lane = 'external' }`, { keysNeedNotExist: false });
    expect(r.error).toContain('No such file');
  });
});

describe.skipIf(!share)('which module a node runs', () => {
  it('a broken, hostile, older or unverified module is ignored in favour of the last known good', () => {
    const cases: Record<string, string> = {
      syntax: 'return { format = 2,',
      code: "os.execute('touch /tmp/kcp-pwned') return {}",
      format: 'return { format = 1, sources = {}, pools = {}, tenants = {}, dkim = {} }',
    };
    for (const [name, text] of Object.entries(cases)) {
      const n = node({ generated: text });
      installModule(n, GOLDEN, 'last-known-good.lua');
      const r = lua(n, `return { route = h.route('gmail.com', '${PREMIUM}', nil), logs = double.logs }`);
      expect(r.route.egress_pool, name).toMatch(/^premium-/);
      expect(r.logs[0].text, name).toContain('cp: ignoring');
    }
    // a module whose content is not what was verified (the hash beside it differs)
    const altered = node();
    installModule(altered, GOLDEN, 'last-known-good.lua');
    const file = path.join(altered.cpDir, 'generated.lua');
    writeFileSync(file, GOLDEN.replace("'203.0.113.10'", "'198.51.100.66'"));
    const r = lua(altered, `return { logs = double.logs, src = double.params_of(double.fire('get_egress_source', 'ip-203-0-113-10')).source_address }`);
    expect(r.src).toBe('203.0.113.10');
    expect(r.logs[0].text).toContain('is not what was verified');
  });

  it('with no verified module at all, the node refuses mail at reception with a 4xx: never unrouted, never unsigned', () => {
    const r = lua(node({ generated: null }), `return h.receive { tenant = '${PREMIUM}', lane = 'external' }`);
    expect(r.rejected).toEqual({ code: 451, message: '4.3.0 this node has no verified policy yet: try again later' });
  });
});

describe.skipIf(!share)('the node bootstrap', () => {
  it('init starts the policy pull with its arguments in a list (kumod drops keyed args), and sets the node up', () => {
    const n = node({ settings: { redis_url: 'redis://10.0.0.9/', dns_name_servers: ['10.0.0.53:53'] } });
    const r = lua(n, `
      double.fire('pre_init')
      double.fire('init')
      local out = {}
      for _, c in ipairs(double.calls) do out[#out + 1] = { name = c.name, arg = c.args[1] } end
      return out`);
    const byName = (name: string) => r.filter((c: any) => c.name === name).map((c: any) => c.arg);
    expect(byName('configure_redis_throttles')).toEqual([{ node: 'redis://10.0.0.9/' }]);
    expect(byName('dns.configure_resolver')).toEqual([{ name_servers: ['10.0.0.53:53'] }]);
    expect(byName('configure_bounce_classifier')).toEqual([{ files: [`${share}/bounce_classifier/iana.toml`] }]);
    expect(byName('configure_accounting_db_path')).toEqual([`${n.root}/spool/accounting.db`]);
    expect(byName('set_config_monitor_globs')).toEqual([[`${n.cpDir}/cp_*.lua`, `${n.policyDir}/init.lua`]]);
    const [task] = byName('spawn_task');
    expect(task.event_name).toBe('cp.poll');
    expect(task.args).toHaveLength(1);
    expect(task.args[0]).toMatchObject({
      url: 'http://127.0.0.1:9/v1/nodes/00000000-0000-4000-8000-00000000000a/policy',
      keys_url: 'http://127.0.0.1:9/v1/nodes/00000000-0000-4000-8000-00000000000a/dkim-keys',
      interval_seconds: 5,
      key_dir: `${n.root}/dkim`,
      generated: `${n.cpDir}/generated.lua`,
    });
    const listeners = byName('start_esmtp_listener');
    expect(listeners.map((l: any) => [l.listen, l.relay_hosts])).toEqual([['0.0.0.0:2525', ['127.0.0.1']], ['0.0.0.0:25', {}]]);
  });

  it.each(['2025.03.19', '2025.05.06', '2026.06.23'])('kumod %s takes the listeners: the empty relay list is a list, not a map', (release) => {
    const r = lua(node(), `double.fire('init'); local n = 0; for _, c in ipairs(double.calls) do if c.name == 'start_esmtp_listener' then n = n + 1 end end; return n`, { release });
    expect(r).toBe(2);
    // what the double refuses from 2025.05.06 on, as kumod does
    const plain = runLua(`local double = require 'kumo_double'\ndouble.install { release = '${release}' }\nlocal kumo = require 'kumo'\nkumo.start_esmtp_listener { listen = '0:25', relay_hosts = {} }`);
    if (release >= '2025.05.06') expect(plain.stderr).toContain('expected a sequence');
    else expect(plain.status).toBe(0);
  });

  it('the spawned pull task really starts: its handler reads its settings from the one list entry', () => {
    const r = lua(node(), `
      double.fire('init')
      double.on_sleep = function() error('stop after one pull') end
      local ok, err = pcall(double.run_task, 1)
      return { err = tostring(err), requests = double.requests, logs = double.logs }`);
    expect(r.err).toContain('stop after one pull');
    // first its own kumod's gauge (no token: that is the control plane's alone), then the pull
    expect(r.requests[0]).toMatchObject({ method: 'GET', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/), headers: {} });
    expect(r.requests[1]).toMatchObject({ method: 'GET', url: 'http://127.0.0.1:9/v1/nodes/00000000-0000-4000-8000-00000000000a/policy', headers: { Authorization: `Bearer node_${'x'.repeat(40)}` } });
  });

  it('posts delivery records to the control plane in batches, retrying (4xx) on any failure', () => {
    const r = lua(node(), `
      local hook
      double.fire('pre_init')
      for _, c in ipairs(double.calls) do if c.name == 'configure_log_hook' then hook = c.args[1] end end
      local sender = double.fire('make.kcp.log_hook', 'kcp.log_hook', nil, nil)
      local function record(id) local m = double.message {}; m:set_meta('log_record', { type = 'Delivery', id = id }); return m end
      double.http_responses = { { status = 200 }, { status = 503, body = 'down' } }
      local ok1, res1 = pcall(sender.send_batch, sender, { record('a'), record('b') })
      local ok2, err2 = pcall(sender.send_batch, sender, { record('c') })
      local qc = double.fire('get_queue_config', 'kcp.log_hook', nil, nil, nil)
      return { hook = hook, first = { ok = ok1, result = res1 }, second = { ok = ok2, code = err2.code, message = err2.message },
        request = double.requests[1], protocol = qc.protocol }`);
    expect(r.hook).toMatchObject({ name: 'kcp', meta: ['tenant', 'kcp_lane'], headers: ['Message-ID'] });
    expect(r.protocol).toEqual({ custom_lua: { constructor: 'make.kcp.log_hook', batch_size: 200, max_batch_latency: '2 seconds' } });
    expect(r.first).toEqual({ ok: true, result: 'posted 2 records' });
    expect(r.second).toMatchObject({ ok: false, code: 421 });
    expect(r.second.message).toContain('503');
    expect(r.request).toMatchObject({ url: 'http://127.0.0.1:9/v1/events/kumo', method: 'POST', headers: { Authorization: `Bearer node_${'x'.repeat(40)}`, 'Content-Type': 'application/json' } });
    expect(JSON.parse(r.request.body)).toEqual([{ type: 'Delivery', id: 'a' }, { type: 'Delivery', id: 'b' }]);
  });

  it('registers every handler once per state and can run again in a new state', () => {
    const n = node();
    const r = lua(n, `
      local names = {}
      for state = 1, 2 do
        h.boot(arg[1], { keys_need_not_exist = true })
        names = {}
        for name, list in pairs(double.handlers) do names[name] = #list end
      end
      return names`);
    expect(r).toMatchObject({
      init: 1, 'cp.poll': 1, get_listener_domain: 1, throttle_insert_ready_queue: 1, smtp_server_message_received: 1,
      get_egress_pool: 1, get_egress_source: 1, get_egress_path_config: 1, 'make.kcp.log_hook': 1,
      // the helpers' own checks (queue, sources, shaping) and ours
      validate_config: 4,
    });
    // policy-extras.log_hooks configures its hook in pre_init; ours points the resolver
    expect(r.pre_init).toBe(2);
    // log_hooks, shaping (TSA publisher) and ours: each defers to the next for queues not its own
    expect(r.get_queue_config).toBe(3);
    expect(r.should_enqueue_log_record).toBe(2);
  });

  it('kumod --validate (validate_config) reports every problem of the installed module and missing DKIM key files', () => {
    const bad = GOLDEN.replace("tier = 'standard'", "tier = 'gold'").replace("algorithm = 'ed25519-sha256'", "algorithm = 'md5'");
    const r = lua(node({ generated: bad }), `double.fire('validate_config'); return { failed = double.validation_failed }`);
    expect(r.failed).toBe(true);
    const good = lua(node(), `double.fire('validate_config'); return { failed = double.validation_failed }`);
    // the golden names key files under /opt/kumomta/etc/dkim, which are not on this machine
    expect(good.failed).toBe(true);
    const none = lua(node({ generated: null }), `double.fire('validate_config'); return { failed = double.validation_failed }`);
    expect(none.failed).toBe(false);
  });

  it('refuses to start with settings it cannot read, naming every problem', () => {
    const n = stageNode({ control_plane_url: 'ftp://x/y', node_id: 'n', node_token: 't', policy_public_key_hex: 'zz', kumo_share_dir: share! } as NodeSettings);
    const r = runLua(`local h = require 'harness'\nh.boot(arg[1])`, [n.policyDir], n.env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('control_plane_url must be');
    expect(r.stderr).toContain('policy_public_key_hex must be 64 hex digits');
  });

  it.each(['http://10.0.0.5:8080', 'http://cp.example.net', 'http://127.0.0.1.evil.example', 'http://127.0.0.1@cp.example.net'])(
    'refuses to start with a plain-http control plane that is not on loopback (%s): the token and DKIM keys would travel in clear',
    (url) => {
      const n = node({ settings: { control_plane_url: url } });
      const r = runLua(`local h = require 'harness'\nh.boot(arg[1])`, [n.policyDir], n.env);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/control_plane_url .*(not loopback|user information)/);
    },
  );

  it.each(['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080', 'https://cp.example.net:8443', 'https://10.0.0.5'])('starts with %s', (url) => {
    const n = node({ settings: { control_plane_url: url } });
    const r = runLua(`local h = require 'harness'\nh.boot(arg[1])\nio.write('booted')`, [n.policyDir], n.env);
    expect(r.stderr).not.toContain('control_plane_url');
    expect(r.stdout).toContain('booted');
  });
});

describe.skipIf(!share)('every runtime module passes its own self-test in the double', () => {
  it.each(['cp_typing', 'cp_data', 'cp_routing', 'cp_shaping', 'cp_pull', 'cp_logs', 'cp_settings'])('%s', (name) => {
    const r = runLua(`local double = require 'kumo_double'\ndouble.install()\nlocal m = require '${name}'\nm:test()\nio.write('ok')`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok');
  });
});

describe.skipIf(!share)('the kumo double is as strict as kumod', () => {
  const boot = `local double = require 'kumo_double'\ndouble.install()\nlocal kumo = require 'kumo'\n`;
  it.each([
    ["kumo.make_queue_config { egress_pol = 'x' }", 'unknown field'],
    ["kumo.make_queue_config { retry_interval = 'soon' }", 'invalid duration'],
    ["kumo.make_egress_path { source_selection_rate = '100/hours' }", 'invalid throttle'],
    ["kumo.make_egress_path { max_message_rate = '0/h' }", 'invalid throttle'],
    ["kumo.make_egress_path { additional_source_selection_rates = { x = '5/days' } }", 'invalid throttle'],
    ["kumo.make_egress_path { max_recipients_per_batch = 10 }", 'unknown field'],
    ["kumo.make_egress_pool { entries = {} }", 'missing field'],
    ["kumo.make_listener_domain { log_oob = 'LogThenDrop' }", 'expected a boolean'],
    ["local p = kumo.make_egress_pool { name = 'p', entries = {} }; local _ = p.entries", 'opaque'],
    ["kumo.on('get_egress_pool', function() end); kumo.on('get_egress_pool', function() end)", 'already has a handler'],
    ["kumo.on('get_egress_source', function() end); double.fire('get_egress_source', 'x')", 'returned nothing'],
    ["kumo.on('get_egress_path_config', function() end); double.fire('get_egress_path_config', 'd', 's', 'site')", 'returned nothing'],
    ["kumo.on('init', function() kumo.on('x', function() end) end); double.fire('init')", 'from within the event handler'],
    ["kumo.encode.base64_decode('YWJj\\nZA==')", 'invalid symbol'],
    ["kumo.encode.base64_decode('YWJjZA')", 'invalid length'],
    ["local m = kumo.make_message('a@b', 'c@d', 'From: a@x, b@x\\r\\n\\r\\nhi'); local _ = m:from_header().domain", 'not a simple single address'],
    ["local m = kumo.make_message('a@b', 'c@d', 'Subject: a\\rb\\r\\n\\r\\nhi'); m:get_first_named_header_value('Subject')", 'lone CR'],
  ])('%s fails', (code, message) => {
    const r = runLua(`${boot}${code}`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it.each([
    ['a typed handler that returns a plain table is refused', "kumo.on('get_egress_pool', function(n) return { name = n } end)\ndouble.fire('get_egress_pool', 'p')", 'not a EgressPool'],
    ['a spawned task keyed args arrive empty', "kumo.spawn_task { event_name = 't', args = { url = 'x' } }\nassert(#double.calls[1].args[1].args == 0)\nerror('empty')", 'empty'],
  ])('%s', (_n, code, message) => {
    const r = runLua(`${boot}${code}`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it('gives kumod\'s defaults where no handler is registered, and reads back what kumod lets you read', () => {
    const r = runLua(`${boot}local json = require 'json'
      local path = double.fire('get_egress_path_config', 'd', 's', 'site')
      local qc = double.fire('get_queue_config', 'd', nil, nil, nil)
      io.write(json.encode { limit = path.connection_limit, prohibited = path.prohibited_hosts, port = path.smtp_port, retry = qc.retry_interval })`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ limit: 32, prohibited: ['127.0.0.0/8', '::1'], port: 25, retry: '20m' });
  });
});
