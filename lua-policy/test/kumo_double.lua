--[[ A test double of KumoMTA's `kumo` module, strict where kumod is strict, so that policy which
passes here fails in kumod only for reasons this double cannot see. Modelled on KumoMTA's
documentation (docs/reference/kumo/*, events/*, message/*) for 2025.03.19 and later:

  - kumo.on: events that take several handlers chain them; the first handler that returns any value,
    even an explicit nil, decides. Every other event takes one handler; a second registration raises.
  - kumo.make_queue_config / make_egress_pool / make_egress_source / make_egress_path reject unknown
    keys, check durations and throttle specs, and return opaque typed values; handlers of typed
    events must return exactly those.
  - kumo.reject raises a structured error; the message double records header edits, meta and DKIM.

Usage: local double = require 'kumo_double'; double.install() -- then require the policy.
]]
local double = {}

local MULTI = {
  pre_init = true, validate_config = true, get_queue_config = true, throttle_insert_ready_queue = true,
  requeue_message = true, should_enqueue_log_record = true, get_acl_definition = true,
}
local TYPED = {
  get_queue_config = 'QueueConfig', get_egress_pool = 'EgressPool', get_egress_source = 'EgressSource',
  get_egress_path_config = 'EgressPathConfig',
}

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

local KEYS = {
  QueueConfig = set { 'egress_pool', 'retry_interval', 'max_retry_interval', 'max_age', 'max_message_rate', 'protocol',
    'reap_interval', 'refresh_interval', 'refresh_strategy', 'strategy', 'provider_name', 'shrink_policy', 'timerwheel_tick_interval' },
  EgressPool = set { 'name', 'entries', 'ttl' },
  ListenerDomain = set { 'relay_to', 'relay_from', 'relay_from_authz', 'log_oob', 'log_arf', 'ttl' },
  EgressSource = set { 'name', 'source_address', 'ehlo_domain', 'remote_port', 'ha_proxy_server', 'ha_proxy_source_address',
    'socks5_proxy_server', 'socks5_proxy_source_address', 'socks5_proxy_username', 'socks5_proxy_password', 'ttl' },
  EgressPathConfig = set { 'connection_limit', 'additional_connection_limits', 'max_message_rate', 'additional_message_rate_throttles',
    'max_connection_rate', 'source_selection_rate', 'additional_source_selection_rates', 'max_deliveries_per_connection',
    'max_recipients_per_batch', 'max_ready', 'consecutive_connection_failures_before_delay', 'enable_tls', 'enable_mta_sts',
    'enable_dane', 'tls_prefer_openssl', 'tls_certificate', 'tls_private_key', 'openssl_cipher_list', 'openssl_cipher_suites',
    'openssl_options', 'rustls_cipher_suites', 'remember_broken_tls', 'opportunistic_tls_reconnect_on_failed_handshake',
    'smtp_port', 'ehlo_domain', 'enable_pipelining', 'enable_rset', 'use_lmtp', 'smtp_auth_plain_username',
    'smtp_auth_plain_password', 'allow_smtp_auth_plain_without_tls', 'ignore_8bit_checks', 'reconnect_strategy',
    'try_next_host_on_transport_error', 'ip_lookup_strategy', 'prohibited_hosts', 'skip_hosts', 'connect_timeout',
    'banner_timeout', 'auth_timeout', 'ehlo_timeout', 'mail_from_timeout', 'rcpt_to_timeout', 'data_timeout',
    'data_dot_timeout', 'rset_timeout', 'idle_timeout', 'starttls_timeout', 'system_shutdown_timeout', 'refresh_interval',
    'refresh_strategy', 'provider_name', 'readyq_pool_name', 'low_memory_reduction_policy', 'no_memory_reduction_policy',
    'dispatcher_wakeup_strategy', 'maintainer_wakeup_strategy', 'dispatcher_progress_watchdog_timeout' },
}
local DURATION_KEYS = set { 'retry_interval', 'max_retry_interval', 'max_age', 'reap_interval', 'refresh_interval', 'ttl',
  'timerwheel_tick_interval', 'connect_timeout', 'banner_timeout', 'auth_timeout', 'ehlo_timeout', 'mail_from_timeout',
  'rcpt_to_timeout', 'data_timeout', 'data_dot_timeout', 'rset_timeout', 'idle_timeout', 'starttls_timeout',
  'system_shutdown_timeout', 'dispatcher_progress_watchdog_timeout' }
local THROTTLE_KEYS = set { 'max_message_rate', 'max_connection_rate', 'source_selection_rate' }
local DURATION_UNITS = set { 'nsec', 'ns', 'usec', 'us', 'msec', 'ms', 'seconds', 'second', 'sec', 's', 'minutes', 'minute',
  'min', 'mins', 'm', 'hours', 'hour', 'hr', 'hrs', 'h', 'days', 'day', 'd', 'weeks', 'week', 'w' }
local THROTTLE_UNITS = set { 's', 'sec', 'second', 'm', 'min', 'minute', 'h', 'hr', 'hour', 'd', 'day' }

function double.check_duration(v)
  if type(v) == 'number' then return v >= 0 end
  if type(v) ~= 'string' or v == '' then return false end
  local rest = v
  local any = false
  while rest ~= '' do
    local n, unit, tail = rest:match('^%s*(%d+)%s*(%a+)%s*(.*)$')
    if not n or not DURATION_UNITS[unit] then return false end
    any = true
    rest = tail
  end
  return any
end

function double.check_throttle(v)
  if type(v) ~= 'string' then return false end
  local spec = v:gsub('^local:', '')
  local n, k, unit, burst = spec:match('^([%d_,]+)/(%d*)(%a+)(.*)$')
  if not n or not THROTTLE_UNITS[unit] then return false end
  if tonumber((n:gsub('[_,]', ''))) == nil or tonumber((n:gsub('[_,]', ''))) <= 0 then return false end
  if k ~= '' and tonumber(k) <= 0 then return false end
  return burst == '' or burst:match('^,max_burst=%d+$') ~= nil
end

local function typed(kind, params)
  if type(params) ~= 'table' then error(kind .. ': expected a table', 3) end
  for k, v in pairs(params) do
    if not KEYS[kind][k] then error(kind .. ': unknown field `' .. tostring(k) .. '`', 3) end
    if DURATION_KEYS[k] and not double.check_duration(v) then error(kind .. ': invalid duration for ' .. k .. ': ' .. tostring(v), 3) end
    if THROTTLE_KEYS[k] and not double.check_throttle(v) then error(kind .. ': invalid throttle spec for ' .. k .. ': ' .. tostring(v), 3) end
  end
  local copy = {}
  for k, v in pairs(params) do copy[k] = v end
  return setmetatable({}, {
    __kind = kind,
    __index = copy,
    __pairs = function() return next, copy, nil end,
    __newindex = function() error(kind .. ' is read-only', 2) end,
  })
end

function double.kind_of(v)
  local mt = type(v) == 'table' and getmetatable(v)
  return mt and mt.__kind or nil
end

function double.install()
  local kumo = {}
  double.kumo = kumo
  double.handlers = {}
  double.calls = {}
  double.logs = {}

  local function record(name)
    return function(...) table.insert(double.calls, { name = name, args = table.pack(...) }) end
  end

  function kumo.on(name, fn)
    if type(fn) ~= 'function' then error('kumo.on: handler for ' .. name .. ' must be a function', 2) end
    local list = double.handlers[name] or {}
    if not MULTI[name] and #list > 0 then
      error(name .. ' event already has a handler defined', 2)
    end
    table.insert(list, fn)
    double.handlers[name] = list
  end

  function kumo.make_queue_config(p) return typed('QueueConfig', p) end
  function kumo.make_egress_pool(p)
    local v = typed('EgressPool', p)
    if type(p.name) ~= 'string' then error('EgressPool: name is required', 2) end
    for _, e in ipairs(p.entries or {}) do
      if type(e.name) ~= 'string' then error('EgressPool: every entry needs a name', 2) end
      if e.weight ~= nil and (math.type(e.weight) ~= 'integer' or e.weight < 0) then error('EgressPool: weight must be a non-negative integer', 2) end
    end
    return v
  end
  function kumo.make_egress_source(p)
    local v = typed('EgressSource', p)
    if type(p.name) ~= 'string' then error('EgressSource: name is required', 2) end
    return v
  end
  function kumo.make_egress_path(p) return typed('EgressPathConfig', p) end
  function kumo.make_listener_domain(p)
    local v = typed('ListenerDomain', p)
    for _, k in ipairs { 'log_oob', 'log_arf' } do
      local x = p[k]
      if x ~= nil and type(x) ~= 'boolean' and x ~= 'Ignore' and x ~= 'LogThenRelay' and x ~= 'LogThenDrop' then error('ListenerDomain: bad ' .. k, 2) end
    end
    return v
  end

  function kumo.reject(code, message)
    error({ kumo_reject = true, code = code, message = message }, 2)
  end

  double.throttled = {}
  function kumo.make_throttle(name, spec)
    if type(name) ~= 'string' or not double.check_throttle(spec) then error('make_throttle: bad name or spec', 2) end
    local t = {}
    function t:delay_message_if_throttled(msg)
      table.insert(double.throttled, { name = 'lua-user-throttle-' .. name, spec = spec, tenant = msg:get_meta 'tenant' })
      return false
    end
    return t
  end

  kumo.dkim = {}
  local function signer(algorithm)
    return function(p)
      for _, required in ipairs { 'domain', 'selector', 'headers', 'key' } do
        if p[required] == nil then error(algorithm .. ' signer: ' .. required .. ' is required', 2) end
      end
      return { signer = algorithm, params = p }
    end
  end
  kumo.dkim.rsa_sha256_signer = signer('rsa-sha256')
  kumo.dkim.ed25519_signer = signer('ed25519')

  for _, level in ipairs { 'error', 'warn', 'info', 'debug' } do
    kumo['log_' .. level] = function(...) table.insert(double.logs, { level = level, text = table.concat({ ... }, ' ') }) end
  end
  for _, name in ipairs { 'define_spool', 'configure_local_logs', 'configure_log_hook', 'start_esmtp_listener',
    'start_http_listener', 'configure_redis_throttles', 'spawn_task', 'bump_config_epoch', 'set_lruttl_cache_capacity' } do
    kumo[name] = record(name)
  end

  -- kumo.http: scripted responses (double.http_responses, in order); requests recorded in double.requests
  double.http_responses = {}
  double.requests = {}
  kumo.http = {}
  function kumo.http.build_client(params)
    for k in pairs(params) do
      if not set { 'user_agent', 'timeout', 'pool_idle_timeout', 'connection_verbose' }[k] then error('build_client: unknown field ' .. k, 2) end
    end
    local client = {}
    function client:close() end
    function client:post(url)
      local b = client:get(url)
      b.request.method = 'POST'
      return b
    end
    function client:get(url)
      local req = { url = url, method = 'GET', headers = {} }
      local builder = { request = req }
      function builder:header(k, v) req.headers[k] = v; return self end
      function builder:body(b) req.body = b; return self end
      function builder:timeout() return self end
      function builder:send()
        table.insert(double.requests, req)
        local r = table.remove(double.http_responses, 1)
        if not r then error('connection refused') end
        if r.error then error(r.error) end
        local res = {}
        local lower = {}
        for k, v in pairs(r.headers or {}) do lower[k:lower()] = v end
        function res:status_code() return r.status end
        function res:headers() return setmetatable({}, { __index = function(_, k) return lower[k:lower()] end }) end
        function res:text() return r.body or '' end
        return res
      end
      return builder
    end
    return client
  end

  -- kumo.digest.sha512(...) -> BinaryResult; here backed by coreutils' sha512sum over a temp file
  kumo.digest = {}
  function kumo.digest.sha512(...)
    local path = os.tmpname()
    local f = assert(io.open(path, 'wb'))
    for _, a in ipairs { ... } do f:write(type(a) == 'string' and a or error('the double only digests strings')) end
    f:close()
    local p = assert(io.popen('sha512sum ' .. path))
    local hex = p:read('l'):match('^(%x+)')
    p:close()
    os.remove(path)
    return { hex = hex, bytes = (hex:gsub('%x%x', function(h) return string.char(tonumber(h, 16)) end)) }
  end

  kumo.encode = {}
  local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  function kumo.encode.base64_decode(s)
    s = s:gsub('%s', '')
    if #s % 4 ~= 0 or s:find('[^%w%+/=]') then error('invalid base64') end
    local out = {}
    for i = 1, #s, 4 do
      local n, pad = 0, 0
      for j = i, i + 3 do
        local c = s:sub(j, j)
        if c == '=' then pad = pad + 1; n = n * 64 else n = n * 64 + (B64:find(c, 1, true) - 1) end
      end
      local bytes = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255)
      out[#out + 1] = bytes:sub(1, 3 - pad)
    end
    return table.concat(out)
  end

  kumo.serde = { json_encode = function(v) return require('json').encode(v) end, json_parse = function(s) return require('json').decode(s) end }

  -- policy-extras.log_hooks: records what a policy asks of it
  double.log_hooks = {}
  package.loaded['policy-extras.log_hooks'] = {
    new = function(_, params)
      for k in pairs(params) do
        if not set { 'name', 'constructor', 'batch_size', 'min_batch_size', 'max_batch_latency', 'filter', 'log_parameters', 'queue_config' }[k] then
          error('log_hooks:new: unknown field ' .. k, 2)
        end
      end
      table.insert(double.log_hooks, params)
    end,
  }

  package.loaded.kumo = kumo
  return kumo
end

--- Fire an event as kumod would, enforcing the chaining and return-type rules.
function double.fire(name, ...)
  local list = double.handlers[name]
  if not list or #list == 0 then
    if name == 'get_queue_config' then return typed('QueueConfig', {}) end
    if MULTI[name] then return nil end
    error('no handler for ' .. name)
  end
  for _, h in ipairs(list) do
    local r = table.pack(h(...))
    if r.n > 0 then
      local want = TYPED[name]
      if want and double.kind_of(r[1]) ~= want then
        error(name .. ': handler returned ' .. (r[1] == nil and 'nil' or type(r[1])) .. ', not a ' .. want)
      end
      return r[1]
    end
    if not MULTI[name] then
      if TYPED[name] then error(name .. ': handler returned nothing, not a ' .. TYPED[name]) end
      return nil
    end
  end
  -- every handler deferred: kumod falls back to the type's default
  if name == 'get_queue_config' then return typed('QueueConfig', {}) end
  return nil
end

--- A message double with the methods policy uses.
function double.message(spec)
  local headers = {}
  for i, h in ipairs(spec.headers or {}) do headers[i] = { h[1], h[2] } end
  local meta = {}
  local msg = { signed_with = {} }
  function msg:get_first_named_header_value(name)
    for _, h in ipairs(headers) do
      if h[1]:lower() == name:lower() then return h[2] end
    end
    return nil
  end
  function msg:remove_all_named_headers(name)
    local kept = {}
    for _, h in ipairs(headers) do
      if h[1]:lower() ~= name:lower() then kept[#kept + 1] = h end
    end
    headers = kept
  end
  function msg:get_meta(k) return meta[k] end
  function msg:set_meta(k, v)
    local t = type(v)
    if not (t == 'string' or t == 'number' or t == 'boolean' or t == 'table' or t == 'nil') then error('meta values must be JSON-able', 2) end
    meta[k] = v
  end
  function msg:from_header()
    local from = self:get_first_named_header_value('From')
    if not from then return nil end
    local email = from:match('<([^>]+)>') or from
    local user, domain = email:match('^([^@]+)@(.+)$')
    return { email = email, user = user, domain = domain }
  end
  function msg:dkim_sign(s) table.insert(self.signed_with, s) end
  function msg:headers() return headers end
  function msg:all_meta() return meta end
  return msg
end

return double
