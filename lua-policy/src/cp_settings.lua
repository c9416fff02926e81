--[[ A node's own settings (node_settings.lua), read once per Lua state and checked field by field.

Usage (init.lua, top level):

  local cp_settings = require 'cp_settings'
  local raw = cp_settings.read(CP_DIR .. '/node_settings.lua')
  package.path = cp_settings.share_dir(raw) .. '/?.lua;' .. package.path  -- where policy-extras live
  local settings = cp_settings.check(raw)   -- raises, listing every problem

node_settings.lua is data (`return { ... }`), written at deployment from the node's registration
(`POST /v1/nodes`) and the control plane's policy key; mta-nodes/README.md documents every key. A
node with settings it cannot read does not start: running on guesses would send mail from the wrong
place or not report it.
]]
local mod = {}

-- the types come from policy-extras.typing, which is found through a setting read here: loaded late
local FIELDS
local function fields()
  if FIELDS then
    return FIELDS
  end
  local typing = require 'policy-extras.typing'
  local Any, List, Map, Num, Option, Str = typing.any, typing.list, typing.map, typing.number, typing.option, typing.string
  FIELDS = {
    control_plane_url = Str,
    node_id = Str,
    node_token = Str,
    policy_public_key_hex = Str,
    redis_url = Option(Str),
    gateway_cidrs = Option(List(Str)),
    control_plane_cidrs = Option(List(Str)),
    relay_listen = Option(Str),
    inbound_listen = Option(Str),
    http_listen = Option(Str),
    hostname = Option(Str),
    spool_dir = Option(Str),
    log_dir = Option(Str),
    dkim_key_dir = Option(Str),
    poll_interval_seconds = Option(Num),
    kumo_share_dir = Option(Str),
    dns_name_servers = Option(List(Str)),
    tsa_urls = Option(List(Str)),
    extra_shaping_files = Option(List(Str)),
    egress_overrides = Option(Map(Str, Any)),
  }
  return FIELDS
end

--- Is `host` (a URL's host: a name, a dotted IPv4 address or a bracketed IPv6 one) this machine's
--- loopback: 127.0.0.0/8, ::1 or localhost? Other spellings of those (0x7f.1, 0:0:0:0:0:0:0:1,
--- localhost.) are not recognised and so count as remote: the check can only err towards https.
function mod.is_loopback_host(host)
  if type(host) ~= 'string' then
    return false
  end
  local h = host:lower()
  if h == 'localhost' or h == '[::1]' then
    return true
  end
  local a, b, c = h:match '^127%.(%d+)%.(%d+)%.(%d+)$'
  if not a then
    return false
  end
  for _, octet in ipairs { a, b, c } do
    -- a leading zero is octal to some URL parsers: refuse the ambiguity
    if #octet > 3 or tonumber(octet) > 255 or (#octet > 1 and octet:sub(1, 1) == '0') then
      return false
    end
  end
  return true
end

--- The problem with a control-plane URL, or nil. The node's token and its DKIM private keys travel
--- over it, so plain http is only for a control plane on the node's own loopback.
function mod.control_plane_url_problem(url)
  local scheme, authority = url:match '^(https?)://([^/?#]+)$'
  if not scheme then
    return 'control_plane_url must be http(s)://host[:port] without a path'
  end
  if authority:find('@', 1, true) then
    return 'control_plane_url must not carry user information (the node authenticates with node_token)'
  end
  local host = authority:match '^(%[[%x:.]+%])$' or authority:match '^(%[[%x:.]+%]):%d+$' or authority:match '^([^:%[%]]+)$' or authority:match '^([^:%[%]]+):%d+$'
  if not host then
    return 'control_plane_url must be http(s)://host[:port] without a path (port in digits, IPv6 in brackets)'
  end
  if scheme == 'http' and not mod.is_loopback_host(host) then
    return 'control_plane_url ' .. url .. ' is plain http to a host that is not loopback (127.0.0.0/8, ::1, localhost): '
      .. 'the node token and DKIM private keys would cross the network in clear text; use https://'
  end
  return nil
end

mod.DEFAULTS = {
  gateway_cidrs = { '127.0.0.1' },
  control_plane_cidrs = { '127.0.0.1', '::1' },
  relay_listen = '0.0.0.0:2525',
  inbound_listen = '0.0.0.0:25',
  http_listen = '127.0.0.1:8000',
  spool_dir = '/var/spool/kumomta',
  log_dir = '/var/log/kumomta',
  dkim_key_dir = '/opt/kumomta/etc/dkim',
  poll_interval_seconds = 5,
  kumo_share_dir = '/opt/kumomta/share',
}

--- Every problem with raw settings, as a list of strings.
function mod.problems(raw)
  if type(raw) ~= 'table' then
    return { 'node settings must be a table' }
  end
  local out = {}
  local keys = {}
  for k in pairs(raw) do
    keys[#keys + 1] = tostring(k)
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local ty = fields()[k]
    if not ty then
      out[#out + 1] = 'unknown setting ' .. k
    else
      local problem = require('cp_typing').problem(ty, raw[k])
      if problem then
        out[#out + 1] = k .. ': ' .. problem
      end
    end
  end
  local names = {}
  for k, ty in pairs(fields()) do
    if not ty.is_optional and raw[k] == nil then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    out[#out + 1] = 'missing setting ' .. k
  end
  local n = raw.poll_interval_seconds
  if type(n) == 'number' and n < 1 then
    out[#out + 1] = 'poll_interval_seconds must be at least 1'
  end
  if type(raw.policy_public_key_hex) == 'string' and not raw.policy_public_key_hex:match('^' .. ('%x'):rep(64) .. '$') then
    out[#out + 1] = 'policy_public_key_hex must be 64 hex digits (GET /v1/policy/public-key)'
  end
  if type(raw.control_plane_url) == 'string' then
    out[#out + 1] = mod.control_plane_url_problem(raw.control_plane_url)
  end
  return out
end

--- Settings with defaults filled in, or nil and the problems.
function mod.parse(raw)
  local problems = mod.problems(raw)
  if #problems > 0 then
    return nil, problems
  end
  local s = {}
  for k, v in pairs(mod.DEFAULTS) do
    s[k] = v
  end
  for k, v in pairs(raw) do
    s[k] = v
  end
  return s
end

--- The raw settings table (no checks yet: the checks need the helpers that share_dir locates).
function mod.read(path)
  local f = io.open(path, 'rb')
  if not f then
    error('cp: node settings ' .. path .. ' are missing: this node cannot pull its policy', 2)
  end
  local text = f:read 'a'
  f:close()
  local chunk, err = load(text, '=' .. path, 't', {})
  local raw
  if chunk then
    local ok, value = pcall(chunk)
    raw = ok and value or nil
    err = not ok and value or nil
  end
  if err then
    error('cp: node settings ' .. path .. ': ' .. tostring(err), 2)
  end
  return raw
end

function mod.share_dir(raw)
  return type(raw) == 'table' and type(raw.kumo_share_dir) == 'string' and raw.kumo_share_dir or mod.DEFAULTS.kumo_share_dir
end

--- Checked settings with defaults, or an error listing every problem.
function mod.check(raw)
  local settings, problems = mod.parse(raw)
  if not settings then
    error('cp: node settings: ' .. table.concat(problems, '; '), 2)
  end
  return settings
end

function mod:test()
  local key = ('ab'):rep(32)
  local good = { control_plane_url = 'https://cp.example:8443', node_id = 'n', node_token = 't', policy_public_key_hex = key }
  local s = assert(mod.parse(good))
  assert(s.relay_listen == '0.0.0.0:2525' and s.poll_interval_seconds == 5, 'defaults fill in')
  local _, problems = mod.parse { control_plane_url = 'https://cp/x', node_id = 1, policy_public_key_hex = 'zz', surprise = true, poll_interval_seconds = 0 }
  local all = table.concat(problems, '\n')
  for _, want in ipairs { 'unknown setting surprise', 'node_id', 'missing setting node_token', 'poll_interval_seconds', 'policy_public_key_hex', 'control_plane_url' } do
    assert(all:find(want, 1, true), 'expected a problem about ' .. want .. ' in:\n' .. all)
  end
  -- plain http only to this machine's loopback
  for _, url in ipairs { 'http://127.0.0.1:8080', 'http://127.1.2.3', 'http://localhost:8080', 'http://LOCALHOST', 'http://[::1]:8080', 'https://10.0.0.5:8443', 'https://[2001:db8::1]', 'https://cp.example' } do
    assert(mod.control_plane_url_problem(url) == nil, url .. ' should be accepted')
  end
  for _, url in ipairs { 'http://10.0.0.5:8080', 'http://cp.example', 'http://127.0.0.1.evil.example', 'http://localhost.evil.example', 'http://127.0.0.1@evil.example',
    'http://[::2]', 'http://0x7f.0.0.1', 'http://127.0.0.01', 'http://127.0.0.256', 'http://[::ffff:127.0.0.1]', 'http://0.0.0.0:8080', 'http://cp:port' } do
    assert(mod.control_plane_url_problem(url), url .. ' should be refused')
  end
  assert(mod.control_plane_url_problem('http://10.0.0.5:8080'):find('not loopback', 1, true))
end

return mod
