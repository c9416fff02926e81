--[[ A test double of KumoMTA's `kumo` module for fast tests in plain Lua 5.4. It follows kumod, read
from KumoMTA's source at the release tags, and where the two are found to disagree kumod is right and
this file is fixed: the project's kumod suite runs the same code in a real kumod.

What it models, as of the floor release 2025.03.19 unless `double.release` says otherwise:

  - kumo.on: the events that take several handlers (pre_init, validate_config, get_queue_config,
    throttle_insert_ready_queue, requeue_message, should_enqueue_log_record) chain them, and the first
    handler that returns any value, even an explicit nil, decides; every other event takes one handler
    and a second registration raises. Registering from inside a running handler (other than main)
    raises, as kumod does.
  - Typed constructors reject unknown keys (the floor's field lists), check durations and throttle
    specs, and return typed values: queue and path configs can be read back, pools, sources and
    listener domains cannot (kumod's are opaque userdata). Handlers of typed events must return them;
    get_egress_path_config and get_queue_config without a handler give kumod's defaults.
  - Listener-domain dispositions: booleans before 2025.05.06, also 'Ignore'/'LogThenDrop'/'LogThenRelay'
    from then on.
  - kumo.spawn_task takes `args` as a list and hands the handler that one list; a keyed table arrives
    empty, as kumod's Vec<serde_json::Value> decodes it.
  - Messages (kumo.make_message, double.message): header accessors that raise where kumod's raise (a
    header block with a lone CR, a From that is not one plain address when `.domain` is read), meta
    that must be JSON-able, DKIM signing recorded.
  - kumo.encode.base64_decode is strict (no whitespace; padding required before 2025.10.06);
    kumo.digest.* (sha256 and sha512 through coreutils), kumo.time.sleep, kumo.traceback.
  - kumo.make_throttle runs an in-memory GCRA with a settable clock; calls are recorded.
  - kumo.shaping.load cannot read TOML here: it checks the files exist and answers
    get_egress_path_config from `double.shaping` (a function or a table), the rest empty.
  - kumo.http: scripted responses in order (`double.http_responses`), requests recorded.

Usage: local double = require 'kumo_double'; double.install { release = '2025.03.19' }
then require or dofile the policy, and drive it with double.fire(event, ...).
]]
local double = {}

local function set(list)
  local s = {}
  for _, k in ipairs(list) do
    s[k] = true
  end
  return s
end

local MULTI = set {
  'pre_init', 'validate_config', 'get_queue_config', 'throttle_insert_ready_queue', 'requeue_message',
  'should_enqueue_log_record',
}
local TYPED = {
  get_queue_config = 'QueueConfig',
  get_egress_pool = 'EgressPool',
  get_egress_source = 'EgressSource',
  get_egress_path_config = 'EgressPathConfig',
}

-- field lists of kumod 2025.03.19 (QueueConfig, EgressPool, EgressSource, EgressPathConfig with its
-- flattened client timeouts, EsmtpDomain); keys added by later releases are unknown to the floor
local KEYS = {
  QueueConfig = set {
    'retry_interval', 'max_retry_interval', 'max_age', 'egress_pool', 'max_message_rate', 'protocol', 'reap_interval',
    'refresh_interval', 'timerwheel_tick_interval', 'strategy', 'refresh_strategy', 'provider_name', 'shrink_policy',
  },
  EgressPool = set { 'name', 'entries', 'ttl' },
  EgressSource = set {
    'name', 'ehlo_domain', 'source_address', 'remote_port', 'ha_proxy_server', 'ha_proxy_source_address',
    'socks5_proxy_server', 'socks5_proxy_source_address', 'socks5_proxy_username', 'socks5_proxy_password', 'ttl',
  },
  EgressPathConfig = set {
    'connection_limit', 'additional_connection_limits', 'enable_tls', 'enable_mta_sts', 'enable_dane',
    'enable_pipelining', 'enable_rset', 'tls_prefer_openssl', 'openssl_cipher_list', 'openssl_cipher_suites',
    'openssl_options', 'rustls_cipher_suites', 'max_ready', 'consecutive_connection_failures_before_delay',
    'smtp_port', 'smtp_auth_plain_username', 'smtp_auth_plain_password', 'allow_smtp_auth_plain_without_tls',
    'max_message_rate', 'additional_message_rate_throttles', 'source_selection_rate',
    'additional_source_selection_rates', 'max_connection_rate', 'max_deliveries_per_connection', 'prohibited_hosts',
    'skip_hosts', 'ehlo_domain', 'aggressive_connection_opening', 'refresh_interval', 'refresh_strategy',
    'provider_name', 'remember_broken_tls', 'opportunistic_tls_reconnect_on_failed_handshake', 'use_lmtp',
    'reconnect_strategy', 'readyq_pool_name', 'low_memory_reduction_policy', 'no_memory_reduction_policy',
    'connect_timeout', 'banner_timeout', 'ehlo_timeout', 'mail_from_timeout', 'rcpt_to_timeout', 'data_timeout',
    'data_dot_timeout', 'rset_timeout', 'idle_timeout', 'starttls_timeout', 'auth_timeout',
  },
  ListenerDomain = set { 'log_oob', 'log_arf', 'relay_to', 'relay_from', 'ttl' },
}
local READABLE = set { 'QueueConfig', 'EgressPathConfig' }
local DURATION_KEYS = set {
  'retry_interval', 'max_retry_interval', 'max_age', 'reap_interval', 'refresh_interval', 'ttl',
  'timerwheel_tick_interval', 'connect_timeout', 'banner_timeout', 'auth_timeout', 'ehlo_timeout',
  'mail_from_timeout', 'rcpt_to_timeout', 'data_timeout', 'data_dot_timeout', 'rset_timeout', 'idle_timeout',
  'starttls_timeout',
}
local THROTTLE_KEYS = set { 'max_message_rate', 'max_connection_rate', 'source_selection_rate' }
local THROTTLE_MAP_KEYS = set { 'additional_message_rate_throttles', 'additional_source_selection_rates' }
local LIMIT_KEYS = set { 'connection_limit' }
local DURATION_UNITS = set {
  'nsec', 'ns', 'usec', 'us', 'msec', 'ms', 'seconds', 'second', 'sec', 's', 'minutes', 'minute', 'min', 'mins',
  'm', 'hours', 'hour', 'hr', 'hrs', 'h', 'days', 'day', 'd', 'weeks', 'week', 'w',
}
local THROTTLE_UNITS = { s = 1, sec = 1, second = 1, m = 60, min = 60, minute = 60, h = 3600, hr = 3600, hour = 3600, d = 86400, day = 86400 }

-- `release` strings compare as dates ('2025.03.19', '2025.05.06-b29689af', ...)
local function since(release)
  return (double.release or '2025.03.19') >= release
end

function double.check_duration(v)
  if type(v) == 'number' then
    return v >= 0
  end
  if type(v) ~= 'string' or v == '' then
    return false
  end
  local rest, any = v, false
  while rest ~= '' do
    local n, unit, tail = rest:match '^%s*(%d+)%s*(%a+)%s*(.*)$'
    if not n or not DURATION_UNITS[unit] then
      return false
    end
    any, rest = true, tail
  end
  return any
end

--- kumod's ThrottleSpec grammar: [local:]N/[K]unit[,max_burst=B]; returns limit, period, burst
function double.parse_throttle(v)
  if type(v) ~= 'string' then
    return nil
  end
  local spec = v:gsub('^local:', '')
  local n, k, unit, burst = spec:match '^([%d_,]+)/(%d*)(%a+)(.*)$'
  if not n or not THROTTLE_UNITS[unit] then
    return nil
  end
  local limit = tonumber((n:gsub('[_,]', '')))
  local mult = k == '' and 1 or tonumber(k)
  if not limit or limit <= 0 or mult <= 0 then
    return nil
  end
  local b = burst == '' and limit or tonumber(burst:match '^,max_burst=(%d+)$')
  if not b then
    return nil
  end
  return limit, mult * THROTTLE_UNITS[unit], b
end

function double.check_throttle(v)
  return double.parse_throttle(v) ~= nil
end

local function check_limit(v)
  if math.type(v) == 'integer' then
    return v >= 1
  end
  if type(v) ~= 'string' then
    return false
  end
  local n = tonumber((v:gsub('^local:', ''):gsub('[_,]', '')))
  return n ~= nil and math.type(n) == 'integer' and n >= 1
end

-- what each typed value was made from: pools, sources and listener domains cannot be read back in
-- kumod, so tests look them up here
double.made = setmetatable({}, { __mode = 'k' })

local function typed(kind, params)
  if type(params) ~= 'table' then
    error(kind .. ': expected a table', 3)
  end
  for k, v in pairs(params) do
    if not KEYS[kind][k] then
      error(kind .. ': unknown field `' .. tostring(k) .. '`', 3)
    end
    if DURATION_KEYS[k] and not double.check_duration(v) then
      error(kind .. ': invalid duration for ' .. k .. ': ' .. tostring(v), 3)
    end
    if THROTTLE_KEYS[k] and not double.check_throttle(v) then
      error(kind .. ': invalid throttle spec for ' .. k .. ': ' .. tostring(v), 3)
    end
    if LIMIT_KEYS[k] and not check_limit(v) then
      error(kind .. ': invalid limit for ' .. k .. ': ' .. tostring(v), 3)
    end
    if THROTTLE_MAP_KEYS[k] then
      for name, spec in pairs(v) do
        if type(name) ~= 'string' or not double.check_throttle(spec) then
          error(kind .. ': invalid throttle spec in ' .. k .. ': ' .. tostring(spec), 3)
        end
      end
    end
  end
  local copy = {}
  for k, v in pairs(params) do
    copy[k] = v
  end
  local mt = {
    __kind = kind,
    __name = kind,
    __newindex = function()
      error(kind .. ' is read-only', 2)
    end,
  }
  if READABLE[kind] then
    mt.__index = copy
    mt.__pairs = function()
      return next, copy, nil
    end
  else
    mt.__index = function(_, k)
      error(kind .. ' has no field ' .. tostring(k) .. ' (kumod returns opaque userdata)', 2)
    end
  end
  local v = setmetatable({}, mt)
  double.made[v] = copy
  return v
end

function double.kind_of(v)
  local mt = type(v) == 'table' and getmetatable(v)
  return mt and mt.__kind or nil
end

--- The parameters a typed value was made from (tests only).
function double.params_of(v)
  return double.made[v]
end

local PATH_DEFAULTS = {
  connection_limit = 32, enable_tls = 'Opportunistic', enable_mta_sts = true, enable_dane = false,
  enable_pipelining = true, enable_rset = true, max_ready = 1024, consecutive_connection_failures_before_delay = 100,
  smtp_port = 25, max_deliveries_per_connection = 1024, prohibited_hosts = { '127.0.0.0/8', '::1' },
  skip_hosts = {}, refresh_interval = '60s', refresh_strategy = 'Ttl',
}
local QUEUE_DEFAULTS = { retry_interval = '20m', max_age = '7 days', reap_interval = '10m', refresh_interval = '1m' }

-------------------------------------------------------------------------------------------------
-- messages

local function parse_headers(data)
  local sep = data:find('\r\n\r\n', 1, true)
  local block = sep and data:sub(1, sep + 1) or data
  if block:find '\r[^\n]' or block:sub(-1) == '\r' then
    error('header block: lone CR in header', 3)
  end
  local headers = {}
  for line in block:gmatch '([^\r\n]*)\r?\n' do
    if line:match '^[ \t]' and #headers > 0 then
      headers[#headers][2] = headers[#headers][2] .. ' ' .. line:gsub('^%s+', '')
    elseif line ~= '' then
      local name, value = line:match '^([!-9;-~]+):%s*(.*)$'
      if not name then
        error('header block: invalid header line: ' .. line, 3)
      end
      headers[#headers + 1] = { name, value }
    end
  end
  return headers, sep and data:sub(sep + 4) or ''
end

local function render(headers, body)
  local out = {}
  for i, h in ipairs(headers) do
    out[i] = h[1] .. ': ' .. h[2] .. '\r\n'
  end
  return table.concat(out) .. '\r\n' .. body
end

-- RFC 5322 address lists, the shapes senders use: `Name <a@b>`, `a@b`, `"Q, N" <a@b>`, groups
local function parse_address_list(value)
  local out, cur, depth, quoted = {}, {}, 0, false
  local function flush()
    local item = table.concat(cur):gsub('^%s+', ''):gsub('%s+$', '')
    cur = {}
    if item == '' then
      return
    end
    item = item:gsub('^[^:<"]*:%s*', ''):gsub(';%s*$', '')
    local name, email = item:match '^(.-)%s*<([^>]*)>$'
    email = email or item
    name = name and name:gsub('^"(.*)"$', '%1')
    if name == '' then
      name = nil
    end
    local user, domain = email:match '^([^@%s]+)@([^@%s]+)$'
    if not user then
      error('address list: cannot parse ' .. item, 4)
    end
    out[#out + 1] = { user = user, domain = domain, email = email, name = name }
  end
  for c in value:gmatch '.' do
    if c == '"' then
      quoted = not quoted
    elseif not quoted and c == '<' then
      depth = depth + 1
    elseif not quoted and c == '>' then
      depth = depth - 1
    end
    if c == ',' and depth == 0 and not quoted then
      flush()
    else
      cur[#cur + 1] = c
    end
  end
  flush()
  return out
end

local function address_list(list)
  local function single(field)
    if #list == 0 then
      error('no addresses', 3)
    end
    if #list > 1 then
      error('is not a simple single address', 3)
    end
    return list[1][field]
  end
  return setmetatable({}, {
    __name = 'HeaderAddressList',
    __index = function(_, k)
      if k == 'list' then
        return list
      end
      if k == 'user' or k == 'domain' or k == 'email' or k == 'name' then
        return single(k)
      end
      return nil
    end,
  })
end

local ARRAY = { __name = 'array' }

function double.is_array(t)
  return getmetatable(t) == ARRAY
end

local function envelope(addr)
  local user, domain = addr:match '^(.*)@([^@]+)$'
  return setmetatable({ user = user, domain = domain, email = addr }, { __tostring = function() return addr end })
end

local next_id = 0

function double.make_message(sender, recipient, data)
  next_id = next_id + 1
  local meta = {}
  local msg = { signed_with = {} }
  local id = string.format('%032x', next_id)
  function msg:id()
    return id
  end
  function msg:sender()
    return envelope(sender)
  end
  function msg:recipient()
    return envelope(recipient)
  end
  function msg:get_data()
    return data
  end
  function msg:set_data(d)
    data = d
  end
  function msg:get_meta(k)
    return meta[k]
  end
  function msg:set_meta(k, v)
    local t = type(v)
    if not (t == 'string' or t == 'number' or t == 'boolean' or t == 'table' or t == 'nil') then
      error('meta values must be JSON-able', 2)
    end
    meta[k] = v
  end
  function msg:get_first_named_header_value(name)
    for _, h in ipairs((parse_headers(data))) do
      if h[1]:lower() == name:lower() then
        return h[2]
      end
    end
    return nil
  end
  function msg:get_all_named_header_values(name)
    local out = {}
    for _, h in ipairs((parse_headers(data))) do
      if h[1]:lower() == name:lower() then
        out[#out + 1] = h[2]
      end
    end
    return out
  end
  function msg:get_all_headers()
    return (parse_headers(data))
  end
  function msg:remove_all_named_headers(name)
    local headers, body = parse_headers(data)
    local kept = {}
    for _, h in ipairs(headers) do
      if h[1]:lower() ~= name:lower() then
        kept[#kept + 1] = h
      end
    end
    data = render(kept, body)
  end
  function msg:prepend_header(name, value)
    data = name .. ': ' .. value .. '\r\n' .. data
  end
  function msg:append_header(name, value)
    local sep = data:find('\r\n\r\n', 1, true)
    if sep then
      data = data:sub(1, sep + 1) .. name .. ': ' .. value .. '\r\n' .. data:sub(sep + 2)
    end
  end
  function msg:get_address_header(name)
    local value = self:get_first_named_header_value(name)
    if value == nil then
      return nil
    end
    return address_list(parse_address_list(value))
  end
  function msg:from_header()
    return self:get_address_header 'From'
  end
  function msg:to_header()
    return self:get_address_header 'To'
  end
  function msg:dkim_sign(s)
    table.insert(self.signed_with, s)
    self:prepend_header('DKIM-Signature', 'v=1; d=' .. s.params.domain .. '; s=' .. s.params.selector .. '; (double)')
  end
  function msg:all_meta()
    return meta
  end
  return msg
end

--- A message from header pairs, for tests: double.message { headers = { { 'From', 'a@b' } }, meta = {} }
function double.message(spec)
  local lines = {}
  for _, h in ipairs(spec.headers or {}) do
    lines[#lines + 1] = h[1] .. ': ' .. h[2] .. '\r\n'
  end
  local msg = double.make_message(spec.sender or 'sender@example.com', spec.recipient or 'rcpt@example.org', table.concat(lines) .. '\r\n' .. (spec.body or 'body\r\n'))
  for k, v in pairs(spec.meta or {}) do
    msg:set_meta(k, v)
  end
  return msg
end

-------------------------------------------------------------------------------------------------
-- small pieces of kumod's runtime that the policy and KumoMTA's policy-extras use

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function base64_decode(s)
  if type(s) ~= 'string' then
    error('parameter must be a string', 2)
  end
  local bad = s:find '[^%w%+/=]'
  if bad then
    error('invalid symbol at ' .. (bad - 1), 2)
  end
  if since '2025.10.06' then
    s = s:gsub('=+$', '')
    s = s .. ('='):rep((4 - #s % 4) % 4)
  elseif #s % 4 ~= 0 then
    error('invalid length at ' .. (#s - #s % 4), 2)
  end
  local out = {}
  for i = 1, #s, 4 do
    local n, pad = 0, 0
    for j = i, i + 3 do
      local c = s:sub(j, j)
      if c == '=' then
        pad = pad + 1
        n = n * 64
      else
        if pad > 0 then
          error('invalid padding at ' .. (j - 1), 2)
        end
        n = n * 64 + (B64:find(c, 1, true) - 1)
      end
    end
    out[#out + 1] = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255):sub(1, 3 - pad)
  end
  return table.concat(out)
end

local function base64_encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local chunk = {}
    for j = 3, 0, -1 do
      local idx = (n >> (6 * j)) & 63
      chunk[#chunk + 1] = B64:sub(idx + 1, idx + 1)
    end
    if not b then
      chunk[3], chunk[4] = '=', '='
    elseif not c then
      chunk[4] = '='
    end
    out[#out + 1] = table.concat(chunk)
  end
  return table.concat(out)
end

local function digest(tool)
  return function(...)
    local path = os.tmpname()
    local f = assert(io.open(path, 'wb'))
    for _, a in ipairs { ... } do
      f:write(type(a) == 'string' and a or require('json').encode(a))
    end
    f:close()
    local p = assert(io.popen(tool .. ' ' .. path))
    local hex = p:read('l'):match '^(%x+)'
    p:close()
    os.remove(path)
    local bytes = hex:gsub('%x%x', function(h)
      return string.char(tonumber(h, 16))
    end)
    return setmetatable({ hex = hex, bytes = bytes, base64 = base64_encode(bytes) }, { __tostring = function() return hex end })
  end
end

-- kumod's lua `regex` is Rust's; the policy-extras this double runs only need plain captures and
-- matches of simple patterns, translated to Lua patterns here
local function compile_regex(re)
  local pat = re:gsub('%%', '%%%%'):gsub('\\(.)', '%%%1'):gsub('%-', '%%-')
  local r = {}
  function r:captures(s)
    local caps = { s:match(pat) }
    if #caps == 0 then
      return nil
    end
    return caps
  end
  function r:is_match(s)
    return s:find(pat) ~= nil
  end
  return r
end

function double.install(opts)
  opts = opts or {}
  double.release = opts.release or double.release or '2025.03.19'
  local kumo = {}
  double.kumo = kumo
  double.handlers = {}
  double.calls = {}
  double.logs = {}
  double.current_event = nil
  double.validation_failed = false

  local function record(name)
    return function(...)
      table.insert(double.calls, { name = name, args = table.pack(...) })
    end
  end

  function kumo.on(name, fn)
    if double.current_event ~= nil and double.current_event ~= 'main' then
      error(
        string.format(
          "Attempting to register an event handler via `kumo.on('%s', ...)` from within the event handler '%s'",
          name,
          double.current_event
        ),
        2
      )
    end
    if type(fn) ~= 'function' then
      error('kumo.on: handler for ' .. name .. ' must be a function', 2)
    end
    local list = double.handlers[name] or {}
    if not MULTI[name] and #list > 0 then
      error(name .. ' event already has a handler defined', 2)
    end
    table.insert(list, fn)
    double.handlers[name] = list
  end

  function kumo.make_queue_config(p)
    return typed('QueueConfig', p)
  end
  function kumo.make_egress_pool(p)
    local v = typed('EgressPool', p)
    if type(p.name) ~= 'string' then
      error('EgressPool: missing field `name`', 2)
    end
    for _, e in ipairs(p.entries or {}) do
      if type(e.name) ~= 'string' then
        error('EgressPool: every entry needs a name', 2)
      end
      if e.weight ~= nil and (math.type(e.weight) ~= 'integer' or e.weight < 0) then
        error('EgressPool: weight must be a non-negative integer', 2)
      end
    end
    return v
  end
  function kumo.make_egress_source(p)
    local v = typed('EgressSource', p)
    if type(p.name) ~= 'string' then
      error('EgressSource: missing field `name`', 2)
    end
    return v
  end
  function kumo.make_egress_path(p)
    return typed('EgressPathConfig', p)
  end
  function kumo.make_listener_domain(p)
    local v = typed('ListenerDomain', p)
    for _, k in ipairs { 'log_oob', 'log_arf' } do
      local x = p[k]
      local ok = x == nil or type(x) == 'boolean'
      if not ok and since '2025.05.06' then
        ok = x == 'Ignore' or x == 'LogThenRelay' or x == 'LogThenDrop'
      end
      if not ok then
        error('ListenerDomain: invalid type for ' .. k .. ': ' .. tostring(x) .. ', expected a boolean', 2)
      end
    end
    return v
  end

  function kumo.reject(code, message)
    error(setmetatable({ kumo_reject = true, code = code, message = message }, {
      __tostring = function(e)
        return e.code .. ' ' .. e.message
      end,
    }), 2)
  end

  -- in-memory GCRA (kumod's in-process store), on a clock tests can move: double.now
  double.now = 0
  double.throttles = {}
  double.throttled = {}
  function kumo.make_throttle(name, spec)
    local limit, period, burst = double.parse_throttle(spec)
    if type(name) ~= 'string' or not limit then
      error('make_throttle: bad name or spec', 2)
    end
    local key = 'lua-user-throttle-' .. name
    local t = {}
    function t:throttle()
      local interval = period / limit
      local tat = math.max(double.throttles[key] or double.now, double.now)
      local new_tat = tat + interval
      local allowed = double.now - (new_tat - burst * interval) >= 0
      if allowed then
        double.throttles[key] = new_tat
      end
      return { throttled = not allowed, limit = burst, retry_after = allowed and nil or (new_tat - burst * interval - double.now) }
    end
    function t:delay_message_if_throttled(msg)
      local r = self:throttle()
      table.insert(double.throttled, { name = key, spec = spec, tenant = msg:get_meta 'tenant', delayed = r.throttled })
      return r.throttled
    end
    return t
  end

  kumo.dkim = {}
  local function signer(algorithm)
    return function(p)
      for _, required in ipairs { 'domain', 'selector', 'headers', 'key' } do
        if p[required] == nil then
          error(algorithm .. ' signer: missing field `' .. required .. '`', 2)
        end
      end
      if type(p.key) == 'string' then
        local f = io.open(p.key, 'rb')
        if not f and not double.keys_need_not_exist then
          error('File("' .. p.key .. '"): No such file or directory (os error 2)', 2)
        end
        if f then
          f:close()
        end
      end
      return { signer = algorithm, params = p }
    end
  end
  kumo.dkim.rsa_sha256_signer = signer 'rsa-sha256'
  kumo.dkim.ed25519_signer = signer 'ed25519'

  for _, level in ipairs { 'error', 'warn', 'info', 'debug' } do
    kumo['log_' .. level] = function(...)
      local parts = {}
      for i, v in ipairs { ... } do
        parts[i] = tostring(v)
      end
      table.insert(double.logs, { level = level, text = table.concat(parts, ' ') })
    end
  end
  for _, name in ipairs {
    'define_spool', 'configure_local_logs', 'configure_log_hook', 'configure_redis_throttles', 'bump_config_epoch',
    'set_lruttl_cache_capacity', 'configure_accounting_db_path', 'configure_bounce_classifier', 'set_config_monitor_globs',
  } do
    kumo[name] = record(name)
  end
  -- listeners: from 2025.05.06 kumod's CIDR lists deserialize as sequences, and an empty Lua table is a
  -- map to it (an empty list must come from kumo.serde.json_parse '[]')
  local function listener(name, lists)
    local rec = record(name)
    return function(params)
      for _, k in ipairs(lists) do
        local v = params[k]
        if since '2025.05.06' and type(v) == 'table' and next(v) == nil and not double.is_array(v) then
          error('deserialize error: invalid type: map, expected a sequence, while processing ' .. k, 2)
        end
      end
      rec(params)
    end
  end
  kumo.start_esmtp_listener = listener('start_esmtp_listener', { 'relay_hosts' })
  kumo.start_http_listener = listener('start_http_listener', { 'trusted_hosts' })
  function kumo.validation_failed()
    double.validation_failed = true
  end

  function kumo.spawn_task(params)
    if type(params) ~= 'table' or type(params.event_name) ~= 'string' then
      error('spawn_task: missing field `event_name`', 2)
    end
    if params.args == nil then
      error('spawn_task: missing field `args`', 2)
    end
    -- kumod decodes args as a list of JSON values: keyed entries are lost
    local list = {}
    for i, v in ipairs(params.args) do
      list[i] = v
    end
    table.insert(double.calls, { name = 'spawn_task', args = table.pack { event_name = params.event_name, args = list } })
  end

  --- Run a spawned task's handler as kumod would (tests only).
  function double.run_task(index)
    local n = 0
    for _, c in ipairs(double.calls) do
      if c.name == 'spawn_task' then
        n = n + 1
        if n == index then
          local p = c.args[1]
          return double.fire(p.event_name, p.args)
        end
      end
    end
    error('no spawned task ' .. index)
  end

  kumo.time = {
    sleep = function(secs)
      double.now = double.now + secs
      if double.on_sleep then
        double.on_sleep(secs)
      end
    end,
  }
  kumo.sleep = kumo.time.sleep

  kumo.dns = { configure_resolver = record 'dns.configure_resolver' }

  function kumo.traceback(level)
    local frames = {}
    local l = (level or 1) + 1
    while true do
      local info = debug.getinfo(l, 'Sln')
      if not info then
        break
      end
      frames[#frames + 1] = {
        source = info.source, short_src = info.short_src, curr_line = info.currentline, what = info.what, name = info.name,
      }
      l = l + 1
    end
    return frames
  end

  kumo.regex = { compile = compile_regex }

  -- kumo.http: scripted responses (double.http_responses, in order); requests recorded in double.requests
  double.http_responses = {}
  double.requests = {}
  kumo.http = {}
  function kumo.http.build_client(params)
    for k in pairs(params) do
      if not set { 'user_agent', 'timeout', 'pool_idle_timeout', 'connection_verbose' }[k] then
        error('build_client: unknown field ' .. k, 2)
      end
    end
    local client = {}
    function client:close() end
    local function request(method, url)
      local req = { url = url, method = method, headers = {} }
      local builder = { request = req }
      function builder:header(k, v)
        req.headers[k] = v
        return self
      end
      function builder:body(b)
        req.body = b
        return self
      end
      function builder:timeout()
        return self
      end
      function builder:send()
        table.insert(double.requests, req)
        local r = table.remove(double.http_responses, 1)
        if not r then
          error('error sending request for url (' .. url .. '): connection refused')
        end
        if r.error then
          error(r.error)
        end
        local res, lower, taken = {}, {}, false
        for k, v in pairs(r.headers or {}) do
          lower[k:lower()] = v
        end
        local function body()
          if taken then
            error 'broken response wrapper'
          end
          taken = true
          return r.body or ''
        end
        function res:status_code()
          return r.status
        end
        function res:headers()
          if taken then
            error 'broken response wrapper'
          end
          return setmetatable({}, { __index = function(_, k) return lower[k:lower()] end })
        end
        res.text = body
        res.bytes = body
        return res
      end
      return builder
    end
    function client:get(url)
      return request('GET', url)
    end
    function client:post(url)
      return request('POST', url)
    end
    function client:put(url)
      return request('PUT', url)
    end
    return client
  end

  kumo.digest = { sha256 = digest 'sha256sum', sha512 = digest 'sha512sum' }
  kumo.encode = { base64_decode = base64_decode, base64_encode = base64_encode }

  local json = require 'json'
  kumo.serde = {
    json_encode = function(v)
      return json.encode(v)
    end,
    json_encode_pretty = function(v)
      return json.encode(v)
    end,
    json_parse = function(s)
      local v = json.decode(s)
      -- kumod remembers that a decoded empty array is an array; a Lua {} cannot say so
      if type(v) == 'table' and next(v) == nil and s:match '^%s*%[' then
        v = setmetatable(v, ARRAY)
      end
      return v
    end,
  }
  kumo.json_encode = kumo.serde.json_encode
  kumo.json_encode_pretty = kumo.serde.json_encode_pretty
  kumo.json_parse = kumo.serde.json_parse

  -- kumo.memoize: a process-wide cache by name and JSON of the arguments
  local memo = {}
  function kumo.memoize(fn, params)
    if type(params) ~= 'table' or type(params.name) ~= 'string' then
      error('memoize: missing field `name`', 2)
    end
    return function(...)
      local key = params.name .. json.encode { ... }
      if memo[key] == nil then
        memo[key] = fn(...)
      end
      return memo[key]
    end
  end

  -- kumo.shaping.load: no TOML here, so the merged parameters come from double.shaping
  double.shaping = nil
  kumo.shaping = {}
  function kumo.shaping.load(files, _options)
    local errors = {}
    for _, f in ipairs(files) do
      local h = io.open(f, 'rb')
      if h then
        h:close()
      else
        errors[#errors + 1] = 'failed to load ' .. f .. ': No such file or directory'
      end
    end
    local shaping = {}
    function shaping:get_egress_path_config(domain, source, site)
      local s = double.shaping
      local params = type(s) == 'function' and s(domain, source, site) or s or {}
      local copy = {}
      for k, v in pairs(params) do
        copy[k] = v
      end
      return copy
    end
    function shaping:get_errors()
      return errors
    end
    function shaping:get_warnings()
      return {}
    end
    function shaping:get_referenced_sources()
      return {}
    end
    function shaping:match_rules()
      return {}
    end
    function shaping:hash()
      return 'double'
    end
    return shaping
  end

  function kumo.make_message(sender, recipient, body)
    return double.make_message(sender, recipient, body)
  end

  if since '2025.12.02' then
    kumo.version = double.release
  end

  package.loaded.kumo = kumo
  return kumo
end

--- Fire an event as kumod would, enforcing the chaining and return-type rules.
function double.fire(name, ...)
  local list = double.handlers[name]
  local function default()
    if name == 'get_queue_config' then
      return typed('QueueConfig', QUEUE_DEFAULTS)
    end
    if name == 'get_egress_path_config' then
      return typed('EgressPathConfig', PATH_DEFAULTS)
    end
    return nil
  end
  if not list or #list == 0 then
    if TYPED[name] == 'EgressPool' or TYPED[name] == 'EgressSource' then
      error('Event ' .. name .. ' has not been registered')
    end
    if TYPED[name] or MULTI[name] then
      return default()
    end
    error(name .. ' has not been registered')
  end
  local previous = double.current_event
  double.current_event = name
  local function done(...)
    double.current_event = previous
    return ...
  end
  for _, h in ipairs(list) do
    local r = table.pack(xpcall(h, function(e)
      return e
    end, ...))
    if not r[1] then
      double.current_event = previous
      error(r[2], 0)
    end
    if r.n > 1 then
      local want = TYPED[name]
      if want and double.kind_of(r[2]) ~= want then
        double.current_event = previous
        error(name .. ': handler returned ' .. (r[2] == nil and 'nil' or type(r[2])) .. ', not a ' .. want)
      end
      return done(r[2])
    end
    if not MULTI[name] then
      if TYPED[name] then
        double.current_event = previous
        error(name .. ': handler returned nothing, not a ' .. TYPED[name])
      end
      return done(nil)
    end
  end
  -- every handler deferred: kumod falls back to the type's default
  return done(default())
end

return double
