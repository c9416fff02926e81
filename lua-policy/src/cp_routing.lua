--[[ Where a node's mail goes: reception (tenant identity, locks, DKIM), scheduled-queue config, egress
pools and sources, and the inbound listener's report domains.

Usage (init.lua registers the handlers; these functions hold the decisions):

  local cp_routing = require 'cp_routing'
  local relay = cp_routing.listener_matcher('0.0.0.0:2525')   -- the gateways' relay listener
  kumo.on('smtp_server_message_received', function(msg)
    cp_routing.receive(data, msg, { from_relay = relay })
  end)
  kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
    if cp_logs.is_log_queue(domain) then return end   -- log hooks, TSA: the helpers route them
    return cp_routing.queue_config(data, domain, tenant, campaign)
  end)
  kumo.on('get_egress_pool', function(name) return cp_routing.egress_pool(data, name) end)
  kumo.on('get_egress_source', function(name) return cp_routing.egress_source(data, name) end)
  kumo.on('get_listener_domain', function(domain) return cp_routing.listener_domain(data, domain) end)

Tenant identity: the submission gateway puts X-KCP-Tenant (our tenant id) and X-KCP-Lane (`external`
or `warming`) at the top of every message it relays. Only mail that arrived on the relay listener,
which only the gateways may use, is trusted to say who sent it; on every listener the headers are
removed. Warming mail is queued under the campaign `warming`, so each lane has its own scheduled queue
and egress pool.
]]
local kumo = require 'kumo'
local cp_data = require 'cp_data'

local mod = {}

mod.TENANT_HEADER = 'X-KCP-Tenant'
mod.LANE_HEADER = 'X-KCP-Lane'
mod.WARMING_CAMPAIGN = 'warming'

-- the replies a node gives at reception, said once
mod.NO_POLICY = { 451, '4.3.0 this node has no verified policy yet: try again later' }
mod.LOCKED = { 550, '5.7.1 external sending is locked for this sender: warming lane only' }
-- a sender domain verified after this node's module was published: its key arrives with the next one
mod.UNKNOWN_DOMAIN = { 451, '4.7.0 this node has no DKIM key for the sender domain yet: try again later' }

local UUID = '^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$'

-- built once per Lua state: reception runs for every message
local DKIM_HEADERS = {
  'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version', 'Content-Type', 'List-Unsubscribe',
  'List-Unsubscribe-Post',
}

local function split_ip_port(s)
  local ip, port = tostring(s or ''):match '^%[?(.-)%]?:(%d+)$'
  return ip, port
end

--[[ A predicate on a message's `received_via` meta (the local ip:port the connection came in on) for
one listener's `listen` address. A wildcard listen address matches on the port alone. kumod 2025.03.19
has no per-listener meta, so the local address is what tells the listeners apart. ]]
function mod.listener_matcher(listen)
  local want_ip, want_port = split_ip_port(listen)
  assert(want_port, 'not an ip:port listen address: ' .. tostring(listen))
  local any = want_ip == '0.0.0.0' or want_ip == '::' or want_ip == ''
  return function(received_via)
    local ip, port = split_ip_port(received_via)
    return port == want_port and (any or ip == want_ip)
  end
end

local function signer_for(data, domain)
  local d = domain and data.dkim[domain:lower()]
  if not d then
    return nil
  end
  local params = { domain = domain:lower(), selector = d.selector, headers = DKIM_HEADERS, key = d.key_file }
  if d.algorithm == 'ed25519-sha256' then
    return kumo.dkim.ed25519_signer(params)
  end
  return kumo.dkim.rsa_sha256_signer(params)
end

--[[ The domain that signs: the From header's, or its first address's when it lists several (RFC 5322
allows that; the gateway has checked every address is the tenant's). kumod's accessors raise on a
header they cannot parse, or on `.domain` of a multi-address From; nil means nothing to sign with. ]]
function mod.from_domain(msg)
  local ok, from = pcall(msg.from_header, msg)
  if not ok or from == nil then
    return nil
  end
  local single_ok, domain = pcall(function()
    return from.domain
  end)
  if single_ok then
    return domain
  end
  local list_ok, first = pcall(function()
    return from.list[1].domain
  end)
  return list_ok and first or nil
end

--[[ Reception, first half: identity and locks. opts.from_relay(received_via) says whether the message
came through the gateways' relay listener. Raises kumo.reject for mail the node must not take; true
for relayed mail (which must be signed next), false for reports from the internet. ]]
function mod.identify(data, msg, opts)
  local tenant = msg:get_first_named_header_value(mod.TENANT_HEADER)
  local lane = msg:get_first_named_header_value(mod.LANE_HEADER)
  msg:remove_all_named_headers(mod.TENANT_HEADER)
  msg:remove_all_named_headers(mod.LANE_HEADER)
  if cp_data.is_empty(data) then
    kumo.reject(mod.NO_POLICY[1], mod.NO_POLICY[2])
  end
  if not opts.from_relay(msg:get_meta 'received_via') then
    -- reports from the internet: nobody outside may say which tenant a message belongs to
    return false
  end
  if lane ~= 'warming' then
    lane = 'external'
  end
  local id = tenant and tenant:lower()
  local known = id and id:match(UUID) and data.tenants[id]
  if known then
    msg:set_meta('tenant', id)
    if lane == 'external' and known.external_locked then
      kumo.reject(mod.LOCKED[1], mod.LOCKED[2])
    end
  end
  msg:set_meta('kcp_lane', lane)
  if lane == 'warming' then
    msg:set_meta('campaign', mod.WARMING_CAMPAIGN)
  end
  return true
end

--[[ Reception, second half: DKIM for the From domain, or a 4xx. The gateway relays only verified
domains, each with a key: one this module does not know is newer than the module, and its mail waits
for the next module rather than leave unsigned. ]]
function mod.sign(data, msg)
  local signer = signer_for(data, mod.from_domain(msg))
  if not signer then
    kumo.reject(mod.UNKNOWN_DOMAIN[1], mod.UNKNOWN_DOMAIN[2])
  end
  -- a key file that is missing makes the signer raise: kumod tempfails the message (421)
  msg:dkim_sign(signer)
end

--[[ Reception: every message of every listener (smtp_server_message_received). ]]
function mod.receive(data, msg, opts)
  if mod.identify(data, msg, opts) then
    mod.sign(data, msg)
  end
end

function mod.queue_config(data, domain, tenant, campaign)
  local t = tenant and data.tenants[tenant]
  local pool
  if t then
    if campaign == mod.WARMING_CAMPAIGN then
      pool = t.warming_pool
    else
      pool = t.external_pool
    end
  end
  return kumo.make_queue_config {
    -- nil only on a node with no pool at all: kumod's unspecified pool, so nothing is dropped
    egress_pool = pool or data.default_pool,
    retry_interval = '20 minutes',
    max_retry_interval = '4 hours',
    max_age = '3 days',
    refresh_strategy = 'Epoch',
  }
end

--- Pool entries, for make_egress_pool (kumod's pool values cannot be read back, so tests read these).
function mod.pool_entries(data, name)
  local members = data.pools[name] or (data.default_pool and data.pools[data.default_pool]) or {}
  local entries = {}
  for i, m in ipairs(members) do
    entries[i] = { name = m.name, weight = m.weight }
  end
  return entries
end

function mod.egress_pool(data, name)
  -- a short ttl, because the epoch does not flush pools: a reshard shows within a minute
  return kumo.make_egress_pool { name = name, entries = mod.pool_entries(data, name), ttl = '1 minute' }
end

--[[ Every IP the node holds is a source, whether or not it carries mail now: a pool cached from the
previous module may still name an IP that was just retired or quarantined, and a name kumod cannot
resolve fails reception. Names that were never ours raise instead of binding some default address. ]]
function mod.source_params(data, name)
  local s = data.sources[name]
  if not s then
    error('cp: unknown egress source ' .. tostring(name))
  end
  return { name = name, source_address = s.source_address, ehlo_domain = s.ehlo_domain, ttl = '1 minute' }
end

function mod.egress_source(data, name)
  return kumo.make_egress_source(mod.source_params(data, name))
end

-- Reports for our return-path domains are logged (the log hook posts them), then dropped. kumod
-- 2025.05.06 added dispositions; 2025.03.19 takes booleans, and `true` without relay_to logs and
-- queues nothing, which is the same outcome. Asked of kumod once per Lua state.
local disposition
local function report_disposition()
  if disposition == nil then
    disposition = pcall(kumo.make_listener_domain, { log_oob = 'LogThenDrop' }) and 'LogThenDrop' or true
  end
  return disposition
end
mod.report_disposition = report_disposition

-- get_listener_domain runs for every recipient on every listener: a set built once per data table
local inbound_sets = setmetatable({}, { __mode = 'k' })

local function inbound_set(data)
  local set = inbound_sets[data]
  if not set then
    set = {}
    for _, d in ipairs(data.inbound_domains) do
      set[d] = true
    end
    inbound_sets[data] = set
  end
  return set
end

function mod.listener_domain(data, domain)
  if inbound_set(data)[(domain or ''):lower()] then
    local d = report_disposition()
    return kumo.make_listener_domain { relay_to = false, log_oob = d, log_arf = d }
  end
  return nil
end

function mod:test()
  local tenant = '11111111-1111-4111-8111-111111111111'
  local data = {
    format = cp_data.FORMAT, node = { name = 'n' },
    sources = {
      ['ip-1'] = { source_address = '127.0.0.1', ehlo_domain = 'mta1.example', carries_mail = true },
      ['ip-2'] = { source_address = '127.0.0.2', ehlo_domain = 'mta2.example' },
    },
    pools = { p = { { name = 'ip-1', weight = 100 } } },
    tenants = { [tenant] = { tier = 'standard', external_pool = 'p', warming_pool = 'p', external_locked = true } },
    dkim = {}, inbound_domains = { 'bounces.a.example' }, default_pool = 'p', providers = {},
  }
  local relay = mod.listener_matcher '0.0.0.0:2525'
  assert(relay '10.1.2.3:2525' and not relay '10.1.2.3:25', 'a wildcard listener matches on the port')
  assert(mod.listener_matcher '[::1]:2525' '[::1]:2525', 'IPv6 listen addresses match')

  local function message(headers, via)
    local msg = kumo.make_message('a@a.example', 'b@b.example', headers .. '\r\nbody\r\n')
    msg:set_meta('received_via', via)
    return msg
  end
  local body = 'From: One <one@a.example>, two@a.example\r\nX-KCP-Tenant: ' .. tenant .. '\r\nX-KCP-Lane: warming\r\nSubject: s\r\n'

  -- a multi-address From still names the signing domain
  assert(mod.from_domain(message(body, '10.0.0.1:2525')) == 'a.example', 'the first From address signs')

  -- the relay listener is trusted; the inbound one is not, and loses the headers all the same
  local msg = message(body, '10.0.0.1:2525')
  assert(mod.identify(data, msg, { from_relay = relay }) == true, 'relayed mail is to be signed')
  assert(msg:get_meta 'tenant' == tenant and msg:get_meta 'campaign' == 'warming', 'relay sets tenant meta')
  assert(msg:get_first_named_header_value 'X-KCP-Tenant' == nil, 'trusted headers removed')
  msg = message(body, '10.0.0.1:25')
  assert(mod.identify(data, msg, { from_relay = relay }) == false, 'reports are not signed')
  assert(msg:get_meta 'tenant' == nil and msg:get_meta 'kcp_lane' == nil, 'inbound mail names no tenant')
  assert(msg:get_first_named_header_value 'X-KCP-Lane' == nil, 'forged headers removed')

  -- locked external mail and a node without policy are refused with the replies above
  local ok, err = pcall(mod.receive, data, message((body:gsub('warming', 'external')), '10.0.0.1:2525'), { from_relay = relay })
  assert(not ok and tostring(err):find '5.7.1', 'a locked tenant is refused: ' .. tostring(err))
  ok, err = pcall(mod.receive, cp_data.empty(), message(body, '10.0.0.1:2525'), { from_relay = relay })
  assert(not ok and tostring(err):find '4.3.0', 'no policy, no mail: ' .. tostring(err))
  ok, err = pcall(mod.sign, data, message(body, '10.0.0.1:2525'))
  assert(not ok and tostring(err):find '4.7.0', 'a sender domain without a key waits, never leaves unsigned: ' .. tostring(err))

  assert(mod.pool_entries(data, 'p')[1].name == 'ip-1', 'pool entries')
  assert(mod.pool_entries(data, 'gone')[1].name == 'ip-1', 'an unknown pool falls back to the default')
  assert(mod.source_params(data, 'ip-2').source_address == '127.0.0.2', 'a source that no longer carries mail still resolves')
  assert(not pcall(mod.source_params, data, 'ip-9'), 'a source that was never ours raises')
  assert(mod.egress_pool(data, 'p') and mod.egress_source(data, 'ip-1'), 'kumod accepts our pool and source')
  assert(mod.listener_domain(data, 'BOUNCES.a.example') ~= nil and mod.listener_domain(data, 'a.example') == nil)
end

return mod
