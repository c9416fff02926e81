--[[ How hard a node pushes each destination: KumoMTA's own shaping (policy-extras.shaping with the
release's shaping.toml and the community file, and TSA where one runs), with what only the control
plane knows layered on top: warm-up caps per (IP, mailbox provider), the tenant's external budget,
and the path of the log hook that posts delivery records.

Usage (init.lua, at the top level):

  local shaping = require 'policy-extras.shaping'
  local cp_shaping = require 'cp_shaping'
  local shaper = cp_shaping.setup(shaping, settings)     -- before any catch-all get_queue_config
  kumo.on('get_egress_path_config', function(domain, source, site)
    return cp_shaping.egress_path(data, shaper, settings.egress_overrides, domain, source, site)
  end)
  kumo.on('throttle_insert_ready_queue', function(msg)
    cp_shaping.throttle_external(data, msg)
  end)

Provider classes: KumoMTA's shaping data names the provider of a site (`provider_name`, from MX
suffixes in shaping.toml); the generated module maps those names to the control plane's warm-up
classes (gmail, microsoft, yahoo, other). A warming IP's cap for a class is one named throttle,
`additional_source_selection_rates[<name>]`, whose Redis key is the same for every site of that
provider: a cap per MX site would let a provider with many sites (every Microsoft 365 tenant domain)
take the whole day's allowance again at each site.
]]
local kumo = require 'kumo'
local cp_logs = require 'cp_logs'

local mod = {}

mod.OTHER = 'other'

--[[ Options for policy-extras.shaping. kumod 2025.03.19 requires http_timeout in any options table it
is given (fixed in 2025.05.06), so both tables carry it. DNS problems never fail a load: shaping
data for a domain whose MX cannot be resolved right now is simply not applied. ]]
function mod.shaping_options(settings)
  local share = settings.kumo_share_dir
  local files = { share .. '/policy-extras/shaping.toml', share .. '/community/shaping.toml' }
  for _, f in ipairs(settings.extra_shaping_files or {}) do
    files[#files + 1] = f
  end
  -- without TSA, no subscriber and no shaping monitor task: init.lua watches the shaping files itself
  local tsa = settings.tsa_urls and #settings.tsa_urls > 0 and settings.tsa_urls or nil
  return {
    no_default_files = true,
    extra_files = files,
    publish = tsa,
    subscribe = tsa,
    cache_ttl = '1 minute',
    load_validation_options = {
      aliased_site = 'Ignore', dns_fail = 'Ignore', local_load = 'Error', null_mx = 'Ignore',
      provider_overlap = 'Ignore', remote_load = 'Ignore', skip_remote = false, http_timeout = '5s',
    },
    validation_options = {
      aliased_site = 'Ignore', dns_fail = 'Ignore', local_load = 'Error', null_mx = 'Ignore',
      provider_overlap = 'Warn', remote_load = 'Ignore', skip_remote = true, http_timeout = '5s',
    },
  }
end

function mod.setup(shaping, settings)
  return shaping:setup_with_automation(mod.shaping_options(settings))
end

--[[ The path of a queue that carries log records (our hook, TSA's publisher): node-local limits (see
cp_logs.is_log_queue), and a connection carries many batches, so it is not recycled after a handful
of deliveries. ]]
function mod.log_queue_params()
  return {
    connection_limit = 'local:16',
    max_connection_rate = 'local:100/s',
    max_deliveries_per_connection = 100000,
    refresh_strategy = 'Epoch',
  }
end

--- The warm-up class of a site, from the provider KumoMTA's shaping data named for it.
function mod.warmup_class(data, provider_name)
  return (provider_name and data.providers[provider_name]) or mod.OTHER
end

--[[ Egress path parameters (a plain table; egress_path makes kumod's value from it). shaper is what
mod.setup returned; overrides (node settings: a staging rig's smtp_port or prohibited_hosts) go last. ]]
function mod.path_params(data, shaper, overrides, routing_domain, source, site)
  if cp_logs.is_log_queue(routing_domain) then
    return mod.log_queue_params()
  end
  local params = shaper.get_egress_path_config(routing_domain, source, site, true)
  local s = data.sources[source]
  local cap = s and s.warmup and s.warmup[mod.warmup_class(data, params.provider_name)]
  if cap then
    local rates = params.additional_source_selection_rates or {}
    rates[cap.name] = cap.spec
    params.additional_source_selection_rates = rates
  end
  for k, v in pairs(overrides or {}) do
    params[k] = v
  end
  params.refresh_strategy = 'Epoch'
  return params
end

function mod.egress_path(data, shaper, overrides, routing_domain, source, site)
  return kumo.make_egress_path(mod.path_params(data, shaper, overrides, routing_domain, source, site))
end

--[[ Ready-queue insertion: an external message waits for its tenant's shared hourly budget, whose
name and spec make the Redis key the gateway reads. The log hook's copies of a record carry the
tenant's meta too and are not the tenant's mail; a message that was counted once is not counted again
when it comes back for a retry. ]]
function mod.throttle_external(data, msg)
  if msg:get_meta 'reception_protocol' == 'LogRecord' then
    return
  end
  if msg:get_meta 'kcp_lane' ~= 'external' or msg:get_meta 'kcp_budget_spent' then
    return
  end
  local t = data.tenants[msg:get_meta 'tenant' or '']
  local th = t and t.external_throttle
  if th and not kumo.make_throttle(th.name, th.spec):delay_message_if_throttled(msg) then
    msg:set_meta('kcp_budget_spent', true)
  end
end

function mod:test()
  local data = {
    sources = {
      ['ip-1'] = {
        source_address = '127.0.0.1', ehlo_domain = 'mta1.example', carries_mail = true,
        warmup = {
          gmail = { name = 'kcp-warmup-ip-1-gmail', spec = '96/d,max_burst=4' },
          other = { name = 'kcp-warmup-ip-1-other', spec = '192/d,max_burst=8' },
        },
      },
    },
    providers = { google = 'gmail' },
    tenants = {},
  }
  local function shaper_with(params)
    return {
      get_egress_path_config = function(_domain, _source, _site, skip_make)
        assert(skip_make, 'the overlay needs the plain table')
        local copy = {}
        for k, v in pairs(params) do
          copy[k] = v
        end
        return copy
      end,
    }
  end
  local google = shaper_with { provider_name = 'google', connection_limit = 5 }
  local p = mod.path_params(data, google, { smtp_port = 2526 }, 'gmail.com', 'ip-1', 'gmail-smtp-in.l.google.com')
  assert(p.additional_source_selection_rates['kcp-warmup-ip-1-gmail'] == '96/d,max_burst=4', 'the gmail cap, by name')
  assert(p.connection_limit == 5 and p.smtp_port == 2526 and p.refresh_strategy == 'Epoch', 'shaping, overrides, epoch')
  p = mod.path_params(data, shaper_with {}, nil, 'example.org', 'ip-1', 'mx.example.org')
  assert(p.additional_source_selection_rates['kcp-warmup-ip-1-other'], 'an unnamed provider is "other"')
  p = mod.path_params(data, google, nil, 'gmail.com', 'ip-9', 'gmail-smtp-in.l.google.com')
  assert(p.additional_source_selection_rates == nil, 'an IP that is not warming has no cap')
  p = mod.path_params(data, google, { smtp_port = 1 }, 'kcp.log_hook', 'unspecified', 'kcp.log_hook')
  assert(p.connection_limit == 'local:16' and p.smtp_port == nil, 'the log hook has its own local path')
  p = mod.path_params(data, google, nil, 'http://10.0.0.1:8008.tsa.kumomta', 'unspecified', 'http://10.0.0.1:8008.tsa.kumomta')
  assert(p.connection_limit == 'local:16', 'so has the TSA publisher')
  -- kumod takes every one of them
  assert(mod.egress_path(data, google, nil, 'gmail.com', 'ip-1', 'gmail-smtp-in.l.google.com'))
  assert(mod.egress_path(data, google, nil, 'kcp.log_hook', 'unspecified', 'kcp.log_hook'))

  -- the budget: counted once per message, never for the log hook's copies
  local name = string.format('kcp-selftest-%d-%d', os.time(), math.random(1, 1000000000))
  data.tenants.t = { external_throttle = { name = name, spec = 'local:2/h' } }
  local function queued(protocol)
    local msg = kumo.make_message('a@a.example', 'b@b.example', 'Subject: s\r\n\r\nbody\r\n')
    msg:set_meta('tenant', 't')
    msg:set_meta('kcp_lane', 'external')
    msg:set_meta('reception_protocol', protocol)
    return msg
  end
  local log_copy = queued 'LogRecord'
  mod.throttle_external(data, log_copy)
  assert(log_copy:get_meta 'kcp_budget_spent' == nil, 'a log record spends nothing')
  local first = queued 'ESMTP'
  mod.throttle_external(data, first)
  mod.throttle_external(data, first)
  assert(first:get_meta 'kcp_budget_spent' == true, 'the first message spends a token')
  local second = queued 'ESMTP'
  mod.throttle_external(data, second)
  assert(second:get_meta 'kcp_budget_spent' == true, 'the retry of the first was not counted: the second token is left')
  local third = queued 'ESMTP'
  mod.throttle_external(data, third)
  assert(third:get_meta 'kcp_budget_spent' == nil, 'the third message waits: the budget of two is spent')

  local opts = mod.shaping_options { kumo_share_dir = '/s', extra_shaping_files = { '/x.toml' }, tsa_urls = { 'http://t:8008' } }
  assert(opts.extra_files[1] == '/s/policy-extras/shaping.toml' and opts.extra_files[3] == '/x.toml')
  assert(opts.publish[1] == 'http://t:8008' and opts.load_validation_options.http_timeout == '5s')
end

return mod
