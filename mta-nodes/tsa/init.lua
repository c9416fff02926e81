--[[ KumoMTA's Traffic Shaping Automation daemon for a kumo control plane fleet:
/opt/kumomta/etc/tsa/init.lua (run by tsa-daemon, one per fleet or per region).

Nodes publish their delivery records to it and subscribe to what it decides (node setting
`tsa_urls`); it applies the `automation` rules of the same shaping files the nodes load: KumoMTA's
shaping.toml and community file, and the operator's own (`extra_shaping_files`, the same list as on
the nodes). Its settings are data, in tsa_settings.lua beside this file (or KCP_TSA_SETTINGS):

  return {
    listen = '0.0.0.0:8008',                       -- where nodes publish and subscribe
    trusted_hosts = { '10.0.0.0/24' },             -- the nodes
    db_path = '/var/spool/kumomta/tsa.db',
    kumo_share_dir = '/opt/kumomta/share',
    extra_shaping_files = { '/opt/kumomta/etc/policy/shaping.toml' },
    dns_name_servers = nil,                        -- a resolver of its own, as on the nodes
  }
]]
local kumo = require 'kumo'
local tsa = require 'tsa'

local path = os.getenv 'KCP_TSA_SETTINGS' or '/opt/kumomta/etc/tsa/tsa_settings.lua'
local f = assert(io.open(path, 'rb'), 'tsa: settings ' .. path .. ' are missing')
local chunk = assert(load(f:read 'a', '=' .. path, 't', {}))
f:close()
local settings = chunk()
local share = settings.kumo_share_dir or '/opt/kumomta/share'

local files = { share .. '/policy-extras/shaping.toml', share .. '/community/shaping.toml' }
for _, extra in ipairs(settings.extra_shaping_files or {}) do
  files[#files + 1] = extra
end
-- kumod 2025.03.19's shaping loader requires http_timeout in any options table it is given
local OPTIONS = {
  aliased_site = 'Ignore', dns_fail = 'Ignore', local_load = 'Error', null_mx = 'Ignore', provider_overlap = 'Ignore',
  remote_load = 'Ignore', skip_remote = true, http_timeout = '5s',
}

kumo.on('tsa_init', function()
  if settings.dns_name_servers then
    kumo.dns.configure_resolver { name_servers = settings.dns_name_servers }
  end
  tsa.configure_tsa_db_path(settings.db_path or '/var/spool/kumomta/tsa.db')
  tsa.start_http_listener {
    listen = settings.listen or '0.0.0.0:8008',
    trusted_hosts = settings.trusted_hosts or { '127.0.0.1', '::1' },
  }
end)

local cached_load = kumo.memoize(kumo.shaping.load, { name = 'tsa_load_shaping_data', ttl = '1 minute', capacity = 4 })

kumo.on('tsa_load_shaping_data', function()
  return cached_load(files, OPTIONS)
end)
