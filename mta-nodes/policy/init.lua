--[[ KumoMTA node bootstrap for the kumo control plane: /opt/kumomta/etc/policy/init.lua

Static and rarely changed (Ansible installs it): it registers every handler once and delegates all
routing decisions to the data the control plane generates for this node. Node settings (listeners,
the gateways allowed to relay, Redis, the control plane's URL) come from node_settings.lua, written
by Ansible, and are data too.

Top level: runs for every new Lua state, so it only reads local files; no network, no tasks.
]]
local kumo = require 'kumo'
-- overridable so the same bootstrap runs in staging and in the kumod test suite
local CP_DIR = os.getenv 'KCP_POLICY_DIR' or '/opt/kumomta/etc/policy/cp'
package.path = CP_DIR .. '/?.lua;' .. package.path
local cp = require 'cp_runtime'

local function load_settings(path)
  local f = io.open(path, 'r')
  if not f then
    return {}
  end
  local text = f:read 'a'
  f:close()
  local chunk = load(text, '=' .. path, 't', {})
  local ok, settings = pcall(chunk or function() return {} end)
  return ok and type(settings) == 'table' and settings or {}
end

local settings = load_settings(CP_DIR .. '/node_settings.lua')

-- delivery records to the control plane, batched; registered before our catch-all get_queue_config
if settings.control_plane_url and settings.node_token then
  local log_hooks = require 'policy-extras.log_hooks'
  log_hooks:new {
    name = 'kcp',
    batch_size = 200,
    max_batch_latency = '2 seconds',
    log_parameters = { meta = { 'tenant', 'kcp_lane' }, headers = { 'Message-ID' } },
    queue_config = { retry_interval = '1 minute', max_retry_interval = '20 minutes' },
    constructor = function()
      return cp.log_sender { url = settings.control_plane_url .. '/v1/events/kumo', token = settings.node_token }
    end,
  }
end

local data = cp.load {
  generated = CP_DIR .. '/generated.lua',
  last_known_good = CP_DIR .. '/last-known-good.lua',
}
cp.setup(data, { kumod_version = settings.kumod_version })

-- The pull loop: a spawned task keeps the Lua state it started in, so the loop lives here in the
-- static bootstrap and re-reads nothing it captured. Every failure is logged and retried.
kumo.on('cp.poll', function(args)
  local etag
  local f = io.open(CP_DIR .. '/generated.lua', 'r')
  if f then
    etag = '"' .. kumo.digest.sha256(f:read 'a').hex .. '"'
    f:close()
  end
  local public_key = args.public_key_hex:gsub('%x%x', function(h) return string.char(tonumber(h, 16)) end)
  while true do
    local r = cp.poll_once {
      url = args.url,
      token = args.token,
      public_key = public_key,
      generated = CP_DIR .. '/generated.lua',
      last_known_good = CP_DIR .. '/last-known-good.lua',
      etag = etag,
      keys_url = args.keys_url,
      key_dir = args.key_dir,
    }
    etag = r.etag or etag
    kumo.time.sleep(args.interval_seconds or 5)
  end
end)

kumo.on('init', function()
  local spool = settings.spool_dir or '/var/spool/kumomta'
  kumo.define_spool { name = 'data', path = spool .. '/data', kind = 'RocksDB' }
  kumo.define_spool { name = 'meta', path = spool .. '/meta', kind = 'RocksDB' }
  kumo.configure_local_logs { log_dir = settings.log_dir or '/var/log/kumomta', max_segment_duration = '1 minute' }
  if settings.redis_url then
    kumo.configure_redis_throttles { node = settings.redis_url }
  end
  -- relay listener: only the submission gateways may hand mail over
  kumo.start_esmtp_listener {
    listen = settings.relay_listen or '0.0.0.0:2525',
    hostname = settings.hostname,
    relay_hosts = settings.gateway_cidrs or { '127.0.0.1' },
    trace_headers = { supplemental_header = true, include_meta_names = { 'tenant', 'kcp_lane' } },
  }
  -- inbound listener for bounces and feedback reports addressed to the return-path domains
  kumo.start_esmtp_listener {
    listen = settings.inbound_listen or '0.0.0.0:25',
    hostname = settings.hostname,
    relay_hosts = {},
  }
  kumo.start_http_listener {
    listen = settings.http_listen or '127.0.0.1:8000',
    trusted_hosts = settings.control_plane_cidrs or { '127.0.0.1', '::1' },
  }
  if settings.control_plane_url and settings.node_id and settings.node_token and settings.policy_public_key_hex then
    kumo.spawn_task {
      event_name = 'cp.poll',
      args = {
        url = settings.control_plane_url .. '/v1/nodes/' .. settings.node_id .. '/policy',
        token = settings.node_token,
        public_key_hex = settings.policy_public_key_hex,
        interval_seconds = settings.poll_interval_seconds or 5,
        keys_url = settings.control_plane_url .. '/v1/nodes/' .. settings.node_id .. '/dkim-keys',
        key_dir = settings.dkim_key_dir or '/opt/kumomta/etc/dkim',
      },
    }
  else
    kumo.log_error 'cp: node_settings.lua lacks the control plane URL, node id, token or key: policy is not pulled'
  end
end)
