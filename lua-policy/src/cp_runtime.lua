--[[ Control-plane runtime for a KumoMTA node.

Usage (in the node's init.lua, at the top level, before any catch-all get_queue_config):

  local cp = require 'cp_runtime'
  local data = cp.load {
    generated = '/opt/kumomta/etc/policy/cp/generated.lua',
    last_known_good = '/opt/kumomta/etc/policy/cp/last-known-good.lua',
  }
  cp.setup(data)

The generated module is data only (`return { ... }`), written by the control plane. It is compiled
into an empty environment, so nothing in it can call anything; it is checked for shape before use,
and a module that fails either check is ignored in favour of the last known good one, so a bad publish
cannot stop the node. All the behaviour lives here, in reviewed, hand-written code.

Routing: the submission gateway sets the trusted headers X-KCP-Tenant (our tenant id) and X-KCP-Lane
(`external` or `warming`); they are read into meta and removed before delivery. Warming mail is queued
under the campaign `warming`, so each lane has its own scheduled queue and egress pool.
]]
local kumo = require 'kumo'

local mod = {}

mod.TENANT_HEADER = 'X-KCP-Tenant'
mod.LANE_HEADER = 'X-KCP-Lane'
mod.WARMING_CAMPAIGN = 'warming'
mod.FORMAT = 1

local UUID = '^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$'

-- Per mailbox provider: how hard to push. Conservative by design; warm-up caps come on top.
mod.SHAPING = {
  gmail = { connection_limit = 10, max_deliveries_per_connection = 50 },
  microsoft = { connection_limit = 8, max_deliveries_per_connection = 20 },
  yahoo = { connection_limit = 6, max_deliveries_per_connection = 20 },
  other = { connection_limit = 5, max_deliveries_per_connection = 100 },
}

local function read_file(path)
  local f = io.open(path, 'r')
  if not f then
    return nil
  end
  local text = f:read 'a'
  f:close()
  return text
end

local function is_table(v)
  return type(v) == 'table'
end

--- Check the shape of generated data; returns nil or a description of the first problem.
function mod.check(data)
  if not is_table(data) then
    return 'the module did not return a table'
  end
  if data.format ~= mod.FORMAT then
    return 'unsupported format ' .. tostring(data.format)
  end
  for _, key in ipairs { 'sources', 'pools', 'tenants', 'dkim' } do
    if not is_table(data[key]) then
      return key .. ' must be a table'
    end
  end
  for name, members in pairs(data.pools) do
    if not is_table(members) then
      return 'pool ' .. name .. ' must be a list'
    end
    for _, m in ipairs(members) do
      if not data.sources[m.name] then
        return 'pool ' .. name .. ' names unknown source ' .. tostring(m.name)
      end
    end
  end
  for id, t in pairs(data.tenants) do
    for _, p in ipairs { t.external_pool, t.warming_pool } do
      if p ~= nil and not data.pools[p] then
        return 'tenant ' .. id .. ' names unknown pool ' .. tostring(p)
      end
    end
  end
  if data.default_pool ~= nil and not data.pools[data.default_pool] then
    return 'default_pool names unknown pool ' .. tostring(data.default_pool)
  end
  return nil
end

--- Compile and check module text; returns data or nil and an error.
function mod.compile(text, chunkname)
  local chunk, err = load(text, chunkname or '=cp_generated', 't', {})
  if not chunk then
    return nil, err
  end
  local ok, data = pcall(chunk)
  if not ok then
    return nil, data
  end
  local problem = mod.check(data)
  if problem then
    return nil, problem
  end
  return data
end

--- The node's data: the generated module if it is good, else the last known good one, else empty.
function mod.load(paths)
  for _, path in ipairs { paths.generated, paths.last_known_good } do
    local text = path and read_file(path)
    if text then
      local data, err = mod.compile(text, '=' .. path)
      if data then
        return data
      end
      kumo.log_error('cp: ignoring ' .. path .. ': ' .. tostring(err))
    end
  end
  -- nothing usable: route everything through kumod's own default rather than fail
  return { format = mod.FORMAT, node = {}, sources = {}, pools = {}, tenants = {}, dkim = {} }
end

function mod.provider_of_site(site_name)
  local site = (site_name or ''):lower()
  if site:find('google.com', 1, true) or site:find('googlemail.com', 1, true) then
    return 'gmail'
  elseif site:find('outlook.com', 1, true) or site:find('hotmail.com', 1, true) then
    return 'microsoft'
  elseif site:find('yahoodns.net', 1, true) or site:find('yahoo.com', 1, true) then
    return 'yahoo'
  end
  return 'other'
end

-- built once per Lua state: reception runs for every message
local DKIM_HEADERS = { 'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version', 'Content-Type', 'List-Unsubscribe', 'List-Unsubscribe-Post' }

local function signer_for(data, domain)
  local d = domain and data.dkim[domain:lower()]
  if not d then
    return nil
  end
  local params = {
    domain = domain:lower(),
    selector = d.selector,
    headers = DKIM_HEADERS,
    key = d.key_file,
  }
  if d.algorithm == 'ed25519-sha256' then
    return kumo.dkim.ed25519_signer(params)
  end
  return kumo.dkim.rsa_sha256_signer(params)
end

--- Reception: trusted headers into meta (then removed), refusal of locked tenants' external mail, DKIM.
function mod.on_message_received(data, msg)
  local tenant = msg:get_first_named_header_value(mod.TENANT_HEADER)
  local lane = msg:get_first_named_header_value(mod.LANE_HEADER)
  msg:remove_all_named_headers(mod.TENANT_HEADER)
  msg:remove_all_named_headers(mod.LANE_HEADER)

  if lane ~= 'warming' then
    lane = 'external'
  end
  local known = tenant and tenant:lower():match(UUID) and data.tenants[tenant:lower()]
  if known then
    tenant = tenant:lower()
    msg:set_meta('tenant', tenant)
    if lane == 'external' and known.external_locked then
      kumo.reject(550, '5.7.1 external sending is locked for this sender: warming lane only')
    end
  end
  msg:set_meta('kcp_lane', lane)
  if lane == 'warming' then
    msg:set_meta('campaign', mod.WARMING_CAMPAIGN)
  end

  local from = msg:from_header()
  local signer = from and signer_for(data, from.domain)
  if signer then
    msg:dkim_sign(signer)
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
  pool = pool or data.default_pool
  return kumo.make_queue_config {
    -- nil: kumod's built-in unspecified pool; still a route, so nothing is ever dropped
    egress_pool = pool,
    retry_interval = '20 minutes',
    max_retry_interval = '4 hours',
    max_age = '3 days',
    refresh_strategy = 'Epoch',
  }
end

function mod.egress_pool(data, name)
  local members = data.pools[name] or (data.default_pool and data.pools[data.default_pool]) or {}
  local entries = {}
  for i, m in ipairs(members) do
    entries[i] = { name = m.name, weight = m.weight }
  end
  -- a short ttl, because the epoch does not flush pools: a reshard shows within a minute
  return kumo.make_egress_pool { name = name, entries = entries, ttl = '1 minute' }
end

function mod.egress_source(data, name)
  local s = data.sources[name]
  if not s then
    -- never bind an unknown name to some default address: the error makes kumod retry later
    error('cp: unknown egress source ' .. tostring(name))
  end
  return kumo.make_egress_source {
    name = name,
    source_address = s.source_address,
    ehlo_domain = s.ehlo_domain,
    ttl = '1 minute',
  }
end

function mod.egress_path(data, routing_domain, source_name, site_name)
  local provider = mod.provider_of_site(site_name)
  local shaping = mod.SHAPING[provider]
  local params = {
    connection_limit = shaping.connection_limit,
    max_deliveries_per_connection = shaping.max_deliveries_per_connection,
    enable_tls = 'Opportunistic',
    refresh_strategy = 'Epoch',
  }
  local s = data.sources[source_name]
  if s and s.warmup and s.warmup[provider] then
    params.source_selection_rate = s.warmup[provider]
  end
  return kumo.make_egress_path(params)
end

local function write_atomically(path, text)
  local tmp = path .. '.tmp'
  local f, err = io.open(tmp, 'w')
  if not f then
    return nil, err
  end
  f:write(text)
  f:close()
  return os.rename(tmp, path)
end

--[[ DKIM private keys arrive over the same authenticated channel as separate files, never inside the
module. Files are created under the kumod service's umask (UMask=0077 in its unit: mode 0600). Only
paths under the node's key directory are written. ]]
function mod.sync_dkim_keys(client, opts)
  local res = client:get(opts.keys_url):header('Authorization', 'Bearer ' .. opts.token):send()
  if res:status_code() ~= 200 then
    return nil, 'control plane answered ' .. tostring(res:status_code())
  end
  local body = kumo.serde.json_parse(res:text())
  local n = 0
  for _, k in ipairs(body.keys or {}) do
    local path = k.path
    if type(path) ~= 'string' or path:sub(1, #opts.key_dir + 1) ~= opts.key_dir .. '/' or path:find('..', 1, true)
      or not path:match('^[%w%./_-]+$') then
      return nil, 'refusing key path ' .. tostring(path)
    end
    local dir = path:match('^(.*)/[^/]+$')
    if dir ~= opts.key_dir then
      -- the path was checked above to be plain characters under key_dir: nothing for a shell to expand
      os.execute('mkdir -p ' .. dir)
    end
    local ok, err = write_atomically(path, k.private_key_pem)
    if not ok then
      return nil, err
    end
    n = n + 1
  end
  return n
end

--[[ One pull of this node's policy from the control plane. Sends the node token and the ETag of what
it already has; verifies the Ed25519 signature with the pinned key before compiling anything; checks
the module's shape; then replaces the generated file atomically, keeping the previous one as the last
known good, and bumps the config epoch so new Lua states load it. Anything wrong leaves the files
as they were: the node keeps running on what it has.
  opts = { url, token, public_key (32 raw bytes), generated, last_known_good, etag, timeout,
           keys_url, key_dir (both optional: DKIM keys are fetched before a new module is installed) }
Returns { status = 'updated'|'unchanged'|'failed', etag = ..., reason = ... }. ]]
function mod.poll_once(opts)
  local ed25519 = require 'cp_ed25519'
  local ok, result = pcall(function()
    local client = kumo.http.build_client { user_agent = 'kcp-node-policy', timeout = opts.timeout or '10 seconds' }
    local req = client:get(opts.url):header('Authorization', 'Bearer ' .. opts.token)
    if opts.etag then
      req:header('If-None-Match', opts.etag)
    end
    local res = req:send()
    local status = res:status_code()
    if status == 304 then
      return { status = 'unchanged', etag = opts.etag }
    end
    if status ~= 200 then
      return { status = 'failed', etag = opts.etag, reason = 'control plane answered ' .. tostring(status) }
    end
    local headers = res:headers()
    local etag = headers['etag']
    local signature = headers['x-kcp-signature']
    local text = res:text()
    if not signature then
      return { status = 'failed', etag = opts.etag, reason = 'unsigned module refused' }
    end
    local sha512 = function(...) return kumo.digest.sha512(...).bytes end
    if not ed25519.verify(opts.public_key, text, kumo.encode.base64_decode(signature), sha512) then
      return { status = 'failed', etag = opts.etag, reason = 'signature does not verify: module refused' }
    end
    local data, err = mod.compile(text, '=cp_pulled')
    if not data then
      return { status = 'failed', etag = opts.etag, reason = 'module refused: ' .. tostring(err) }
    end
    local current = read_file(opts.generated)
    if current then
      assert(write_atomically(opts.last_known_good, current))
    end
    if opts.keys_url then
      -- keys first: a module naming a key file that is not there yet would fail to sign
      local written, kerr = mod.sync_dkim_keys(client, opts)
      if not written then
        return { status = 'failed', etag = opts.etag, reason = 'DKIM keys: ' .. tostring(kerr) }
      end
    end
    assert(write_atomically(opts.generated, text))
    kumo.bump_config_epoch()
    return { status = 'updated', etag = etag }
  end)
  if not ok then
    return { status = 'failed', etag = opts.etag, reason = tostring(result) }
  end
  if result.status == 'failed' then
    kumo.log_error('cp: policy pull failed: ' .. result.reason)
  end
  return result
end

--[[ The connection object for the log hook that posts delivery records to the control plane in
batches (policy-extras.log_hooks with batch_size > 1). Any answer but 2xx is a 4xx rejection, so
kumod keeps the batch and retries it with backoff: a control plane that is down or a rotated token
costs delay, never records.
  opts = { url, token } ]]
function mod.log_sender(opts)
  local client = kumo.http.build_client { user_agent = 'kcp-node-logs', timeout = '30 seconds' }
  local sender = {}
  function sender:send_batch(messages)
    local records = {}
    for i, msg in ipairs(messages) do
      records[i] = msg:get_meta 'log_record'
    end
    local res = client:post(opts.url)
      :header('Authorization', 'Bearer ' .. opts.token)
      :header('Content-Type', 'application/json')
      :body(kumo.serde.json_encode(records))
      :send()
    local status = res:status_code()
    if status >= 200 and status < 300 then
      return 'posted ' .. #records .. ' records'
    end
    kumo.reject(421, '4.3.0 control plane answered ' .. tostring(status) .. ': ' .. res:text():sub(1, 200))
  end
  function sender:close()
    client:close()
  end
  return sender
end

--- Ready-queue insertion: an external message waits for its tenant's shared hourly budget.
function mod.throttle_external(data, msg)
  if msg:get_meta 'kcp_lane' == 'warming' then
    return
  end
  local t = data.tenants[msg:get_meta 'tenant' or '']
  local th = t and t.external_throttle
  if th then
    -- the name and spec make the Redis key the gateway reads: lua-user-throttle-<name>:<limit>:<burst>:<period>
    kumo.make_throttle(th.name, th.spec):delay_message_if_throttled(msg)
  end
end

--- Inbound listener: bounces and feedback reports for our return-path domains are logged (and so
--- posted to the control plane by the log hook), then dropped; anything else is not ours to accept.
-- 'LogThenDrop' exists since 2025.05.06; older nodes only know booleans (true: log, then relay)
function mod.report_disposition(version)
  if version and version >= '2025.05.06' then
    return 'LogThenDrop'
  end
  return true
end

-- get_listener_domain runs for every recipient on every listener: look domains up in a set, built
-- once per Lua state, not by scanning the list
local inbound_sets = setmetatable({}, { __mode = 'k' })

local function inbound_set(data)
  local set = inbound_sets[data]
  if not set then
    set = {}
    for _, d in ipairs(data.inbound_domains or {}) do
      set[d] = true
    end
    inbound_sets[data] = set
  end
  return set
end

function mod.listener_domain(data, domain, version)
  if inbound_set(data)[(domain or ''):lower()] then
    local disposition = mod.report_disposition(version)
    return kumo.make_listener_domain { relay_to = false, log_oob = disposition, log_arf = disposition }
  end
  return nil
end

--- Register the handlers. Call once, at the top level of init.lua.
function mod.setup(data, opts)
  -- kumo.version exists since 2025.12.02; before that the node settings say which kumod runs
  local version = kumo.version or (opts and opts.kumod_version)
  kumo.on('get_listener_domain', function(domain, listener, conn_meta)
    return mod.listener_domain(data, domain, version)
  end)
  kumo.on('throttle_insert_ready_queue', function(msg)
    mod.throttle_external(data, msg)
  end)
  kumo.on('smtp_server_message_received', function(msg)
    mod.on_message_received(data, msg)
  end)
  kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
    -- other helpers' queues (log hooks) are theirs: defer with a bare return
    if domain and domain:find('%.log_hook$') then
      return
    end
    return mod.queue_config(data, domain, tenant, campaign)
  end)
  kumo.on('get_egress_pool', function(name)
    return mod.egress_pool(data, name)
  end)
  kumo.on('get_egress_source', function(name)
    return mod.egress_source(data, name)
  end)
  kumo.on('get_egress_path_config', function(routing_domain, source, site_name)
    return mod.egress_path(data, routing_domain, source, site_name)
  end)
end

return mod
