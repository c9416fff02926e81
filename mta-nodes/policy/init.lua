--[[ KumoMTA node bootstrap for the kumo control plane: /opt/kumomta/etc/policy/init.lua

Static and rarely changed (Ansible installs it with the cp_*.lua runtime beside it in cp/): it
registers every handler once and delegates every decision to the runtime modules and to the data the
control plane generates for this node (cp/generated.lua, pulled and verified by the node itself).
The node's own settings (listeners, the gateways allowed to relay, Redis, the control plane) come
from cp/node_settings.lua, which is data too.

The top level runs for every new Lua state, so it only reads local files: no network, no tasks.
Supported kumod releases: 2025.03.19 and later (2025.05.06 or later recommended; see the README).
]]
local kumo = require 'kumo'

-- overridable so the same bootstrap runs in staging and in the project's kumod test suite
local CP_DIR = os.getenv 'KCP_POLICY_DIR' or '/opt/kumomta/etc/policy/cp'
package.path = CP_DIR .. '/?.lua;' .. package.path

local cp_settings = require 'cp_settings'
local raw_settings = cp_settings.read(CP_DIR .. '/node_settings.lua')
-- KumoMTA's policy-extras: kumod puts /opt/kumomta/share first on the path; an unpacked kumod has
-- them wherever kumo_share_dir says
package.path = cp_settings.share_dir(raw_settings) .. '/?.lua;' .. package.path
local settings = cp_settings.check(raw_settings)

local cp_data = require 'cp_data'
local cp_logs = require 'cp_logs'
local cp_pull = require 'cp_pull'
local cp_routing = require 'cp_routing'
local cp_shaping = require 'cp_shaping'

local PATHS = { generated = CP_DIR .. '/generated.lua', last_known_good = CP_DIR .. '/last-known-good.lua' }

-- a list kumod reads as a list on every release: from 2025.05.06 an empty Lua table is a map to it
local function list(t)
  return #t == 0 and kumo.serde.json_parse '[]' or t
end

-- helpers that register queue handlers of their own come before our catch-all get_queue_config
cp_logs.setup_hook(require 'policy-extras.log_hooks', settings)
local shaper = cp_shaping.setup(require 'policy-extras.shaping', settings)

local data = cp_data.load(PATHS)
local from_relay = cp_routing.listener_matcher(settings.relay_listen)

kumo.on('pre_init', function()
  if settings.dns_name_servers then
    kumo.dns.configure_resolver { name_servers = settings.dns_name_servers }
  end
end)

kumo.on('init', function()
  local spool = settings.spool_dir
  kumo.define_spool { name = 'data', path = spool .. '/data', kind = 'RocksDB' }
  kumo.define_spool { name = 'meta', path = spool .. '/meta', kind = 'RocksDB' }
  kumo.configure_accounting_db_path(spool .. '/accounting.db')
  kumo.configure_local_logs { log_dir = settings.log_dir, max_segment_duration = '1 minute' }
  cp_logs.configure_bounce_classifier(settings)
  if settings.redis_url then
    kumo.configure_redis_throttles { node = settings.redis_url }
  end
  -- the puller bumps the epoch itself: watch the code and the operator's shaping files, not the
  -- generated module, so an install is not reloaded twice
  local globs = { CP_DIR .. '/cp_*.lua', CP_DIR:match '^(.*)/[^/]+$' .. '/init.lua' }
  for _, f in ipairs(settings.extra_shaping_files or {}) do
    globs[#globs + 1] = f
  end
  kumo.set_config_monitor_globs(globs)
  -- relay listener: only the submission gateways may hand mail over, and only they name tenants
  kumo.start_esmtp_listener {
    listen = settings.relay_listen,
    hostname = settings.hostname,
    relay_hosts = list(settings.gateway_cidrs),
    trace_headers = { supplemental_header = true, include_meta_names = { 'tenant', 'kcp_lane' } },
  }
  -- inbound listener: bounces and feedback reports for the return-path domains, logged then dropped
  kumo.start_esmtp_listener {
    listen = settings.inbound_listen,
    hostname = settings.hostname,
    relay_hosts = list {},
  }
  kumo.start_http_listener {
    listen = settings.http_listen,
    trusted_hosts = list(settings.control_plane_cidrs),
  }
  shaper.setup_publish()
  kumo.spawn_task { event_name = 'cp.poll', args = { cp_pull.task_args(settings, CP_DIR) } }
end)

kumo.on('cp.poll', function(args)
  cp_pull.run(args[1])
end)

kumo.on('get_listener_domain', function(domain, _listener, _conn_meta)
  return cp_routing.listener_domain(data, domain)
end)

kumo.on('smtp_server_message_received', function(msg)
  cp_routing.receive(data, msg, { from_relay = from_relay })
end)

kumo.on('get_queue_config', function(domain, tenant, campaign, _routing_domain)
  -- queues of log records (our hook, TSA's publisher) are routed by KumoMTA's helpers
  if cp_logs.is_log_queue(domain) then
    return
  end
  return cp_routing.queue_config(data, domain, tenant, campaign)
end)

kumo.on('get_egress_pool', function(name)
  return cp_routing.egress_pool(data, name)
end)

kumo.on('get_egress_source', function(name)
  return cp_routing.egress_source(data, name)
end)

kumo.on('get_egress_path_config', function(routing_domain, source, site_name)
  return cp_shaping.egress_path(data, shaper, settings.egress_overrides, routing_domain, source, site_name)
end)

kumo.on('throttle_insert_ready_queue', function(msg)
  cp_shaping.throttle_external(data, msg)
end)

-- kumod --validate: the module this node would run, checked in full, and the key files it names
kumo.on('validate_config', function()
  local text, why = cp_data.verified_text(PATHS.generated)
  if not text then
    print('cp: WARNING: no installed policy module (' .. why .. '): the node refuses mail until it pulls one')
    return
  end
  local checked, problems = cp_data.accept(text, '=' .. PATHS.generated)
  problems = problems or {}
  if checked then
    for domain, d in pairs(checked.dkim) do
      local f = io.open(d.key_file, 'rb')
      if f then
        f:close()
      else
        problems[#problems + 1] = string.format('dkim %s: key file %s is missing', domain, d.key_file)
      end
    end
  end
  for _, p in ipairs(problems) do
    print('cp: ERROR: ' .. p)
  end
  if #problems > 0 then
    kumo.validation_failed()
  end
end)
