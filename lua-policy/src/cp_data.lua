--[[ The control plane's data on a KumoMTA node: the generated module, its checks, and which copy
the node runs.

Usage (at the top level of init.lua; every new Lua state runs it, and it touches only local files):

  local cp_data = require 'cp_data'
  local data = cp_data.load {
    generated = '/opt/kumomta/etc/policy/cp/generated.lua',
    last_known_good = '/opt/kumomta/etc/policy/cp/last-known-good.lua',
  }
  if cp_data.is_empty(data) then
    -- no verified module yet: refuse mail (4xx) rather than send it unrouted and unsigned
  end

  -- in validate_config (kumod --validate): every problem, not just the first
  for _, problem in ipairs(cp_data.problems(data)) do print(problem) end

The module is data only (`return { ... }`), written by the control plane and signed by it. The
puller (cp_pull) verifies the signature and checks the data with the typed records below before it
installs anything, then writes the content's SHA-256 next to it (`<file>.sha256`). Loading compares
that hash with the file, so what a Lua state runs is byte for byte what was verified; a file that was
altered or corrupted on disk is ignored in favour of the last known good copy, and with neither the
node holds mail instead of sending it.

Shape (format 2):

  format = 2,
  node = { name = 'fsn1-a' },
  sources = { ['ip-203-0-113-10'] = { source_address, ehlo_domain, carries_mail,
                                      warmup = { gmail = { name = 'kcp-warmup-ip-203-0-113-10-gmail', spec = '96/d,max_burst=4' }, ... } } },
  pools = { ['premium-4c14ac2572'] = { { name = 'ip-203-0-113-10', weight = 100 }, ... } },
  tenants = { ['<uuid>'] = { tier, external_pool, warming_pool, external_locked, external_throttle = { name, spec } } },
  dkim = { ['acme.example'] = { selector, algorithm, key_file } },
  inbound_domains = { 'bounces.acme.example', ... },
  default_pool = 'rehabilitation-458053826f',
  providers = { google = 'gmail', outlook = 'microsoft', ... },   -- KumoMTA shaping provider -> warm-up class
]]
local kumo = require 'kumo'
local typing = require 'policy-extras.typing'
local cp_typing = require 'cp_typing'

local mod = {}

mod.FORMAT = 2

local Bool, List, Map, Num, Option, Record, Str =
  typing.boolean, typing.list, typing.map, typing.number, typing.option, typing.record, typing.string

local Tier = typing.enum('Tier', 'premium', 'standard', 'rehabilitation', 'quarantine')
local WarmupClass = typing.enum('WarmupClass', 'gmail', 'microsoft', 'yahoo', 'other')
local DkimAlgorithm = typing.enum('DkimAlgorithm', 'rsa-sha256', 'ed25519-sha256')

-- typing treats a false value as absent, so every boolean is optional (absent means false)
-- a warm-up cap: the named source-selection throttle kumod shares through Redis
mod.WarmupCap = Record('WarmupCap', { name = Str, spec = Str })
mod.Source = Record('Source', {
  source_address = Str,
  ehlo_domain = Str,
  carries_mail = Option(Bool),
  warmup = Option(Map(WarmupClass, mod.WarmupCap)),
})
mod.PoolEntry = Record('PoolEntry', { name = Str, weight = Num })
mod.Tenant = Record('Tenant', {
  tier = Tier,
  external_pool = Option(Str),
  warming_pool = Option(Str),
  external_locked = Option(Bool),
  external_throttle = Option(Record('ExternalThrottle', { name = Str, spec = Str })),
})
mod.Dkim = Record('Dkim', { selector = Str, algorithm = DkimAlgorithm, key_file = Str })
mod.Node = Record('Node', { name = Str })

local TOP = {
  format = true, node = true, sources = true, pools = true, tenants = true, dkim = true,
  inbound_domains = true, default_pool = true, providers = true,
}

local function read_file(path)
  local f = io.open(path, 'rb')
  if not f then
    return nil
  end
  local text = f:read 'a'
  f:close()
  return text
end
mod.read_file = read_file

local check_with = cp_typing.problem

local function is_table(v)
  return type(v) == 'table'
end

--- Every problem in the data, as a list of strings (empty when the data is good). Each record is
--- checked on its own, so one bad tenant does not hide the next one.
function mod.problems(data)
  local out = {}
  local function add(fmt, ...)
    out[#out + 1] = string.format(fmt, ...)
  end
  if not is_table(data) then
    return { 'the module did not return a table' }
  end
  if data.format ~= mod.FORMAT then
    return { string.format('unsupported format %s (this runtime reads format %d)', tostring(data.format), mod.FORMAT) }
  end
  for k in pairs(data) do
    if not TOP[k] then
      add('unknown top-level key %s', tostring(k))
    end
  end
  for _, key in ipairs { 'node', 'sources', 'pools', 'tenants', 'dkim', 'inbound_domains', 'providers' } do
    if not is_table(data[key]) then
      add('%s must be a table', key)
    end
  end
  if #out > 0 then
    return out
  end
  -- each record on its own, in name order: a bad one is named and left out, the rest still checked
  local function records(label, map, ty)
    local names, good = {}, {}
    for name in pairs(map) do
      names[#names + 1] = name
    end
    table.sort(names, function(a, b)
      return tostring(a) < tostring(b)
    end)
    for _, name in ipairs(names) do
      local p = type(name) ~= 'string' and 'names must be strings' or check_with(ty, map[name])
      if p then
        add('%s %s: %s', label, tostring(name), p)
      else
        good[#good + 1] = { name, map[name] }
      end
    end
    return good
  end
  local p = check_with(mod.Node, data.node)
  if p then
    add('node: %s', p)
  end
  records('source', data.sources, mod.Source)
  for _, entry in ipairs(records('pool', data.pools, List(mod.PoolEntry))) do
    local name, members = entry[1], entry[2]
    for i, m in ipairs(members) do
      local s = data.sources[m.name]
      if not s then
        add('pool %s names unknown source %s', name, m.name)
      elseif not s.carries_mail then
        add('pool %s names source %s, which does not carry mail', name, m.name)
      end
      if math.type(m.weight) ~= 'integer' or m.weight < 0 then
        add('pool %s entry %d: weight must be a non-negative integer', name, i)
      end
    end
  end
  for _, entry in ipairs(records('tenant', data.tenants, mod.Tenant)) do
    local id, t = entry[1], entry[2]
    for _, key in ipairs { 'external_pool', 'warming_pool' } do
      if t[key] ~= nil and not data.pools[t[key]] then
        add('tenant %s: %s names unknown pool %s', id, key, t[key])
      end
    end
  end
  records('dkim', data.dkim, mod.Dkim)
  records('provider', data.providers, WarmupClass)
  for i, d in ipairs(data.inbound_domains) do
    if type(d) ~= 'string' then
      add('inbound_domains[%d] must be a string', i)
    end
  end
  if data.default_pool ~= nil and not data.pools[data.default_pool] then
    add('default_pool names unknown pool %s', tostring(data.default_pool))
  end
  return out
end

--- Compile module text into an empty environment (nothing in it can call anything). Returns the
--- value or nil and the error.
function mod.compile(text, chunkname)
  local chunk, err = load(text, chunkname or '=cp_generated', 't', {})
  if not chunk then
    return nil, err
  end
  local ok, data = pcall(chunk)
  if not ok then
    return nil, data
  end
  return data
end

--- Compile and check fully: data, or nil and the list of problems.
function mod.accept(text, chunkname)
  local data, err = mod.compile(text, chunkname)
  if err then
    return nil, { tostring(err) }
  end
  local problems = mod.problems(data)
  if #problems > 0 then
    return nil, problems
  end
  return data
end

function mod.sha256_hex(text)
  return kumo.digest.sha256(text).hex
end

--- The hash recorded when the file was verified, or nil.
function mod.recorded_hash(path)
  local h = read_file(path .. '.sha256')
  return h and h:match '^(%x+)'
end

-- the file's text and hash if it is exactly what was verified; else nil and why
local function verified(path)
  local text = read_file(path)
  if not text then
    return nil, 'absent'
  end
  local want = mod.recorded_hash(path)
  if not want then
    return nil, 'no record of its verification'
  end
  local got = mod.sha256_hex(text)
  if got ~= want then
    return nil, 'its content is not what was verified'
  end
  return text, got
end

--- The file's text if it is exactly what was verified; else nil and why.
function mod.verified_text(path)
  local text, why = verified(path)
  if text then
    return text
  end
  return nil, why
end

local EMPTY = setmetatable({}, { __name = 'cp.empty' })

--- Nothing verified to run: the node must hold mail, never send it unrouted.
function mod.empty()
  return {
    format = mod.FORMAT, node = {}, sources = {}, pools = {}, tenants = {}, dkim = {},
    inbound_domains = {}, providers = {}, [EMPTY] = true,
  }
end

function mod.is_empty(data)
  return data[EMPTY] == true
end

--[[ The data a Lua state runs: the generated module if it is what was verified, else the last known
good copy, else empty. Only cheap checks run here (hash, compile, the top-level shape), because every
new Lua state does this; the full check ran when the module was installed. Returns data, which copy
it is ('generated', 'last_known_good' or 'none') and the SHA-256 of its text (nil for none). The
puller reports the copy and hash to the control plane as what the node runs. ]]
function mod.select(paths)
  for _, which in ipairs { 'generated', 'last_known_good' } do
    local path = paths[which]
    if path then
      local text, hash_or_why = verified(path)
      local data, err, why
      if text then
        data, err = mod.compile(text, '=' .. path)
        if data and (type(data) ~= 'table' or data.format ~= mod.FORMAT) then
          data, err = nil, 'unsupported format'
        end
      else
        why = hash_or_why
        err = why
      end
      if data then
        return data, which, hash_or_why
      end
      if why ~= 'absent' then
        kumo.log_error(string.format('cp: ignoring %s: %s', path, tostring(err)))
      end
    end
  end
  return mod.empty(), 'none', nil
end

--- The data a Lua state runs, and the path it came from (nil when empty).
function mod.load(paths)
  local data, which = mod.select(paths)
  return data, paths[which]
end

function mod:test()
  local ok_text = [[return { format = 2, node = { name = 'n1' },
    sources = { ['ip-1'] = { source_address = '10.0.0.1', ehlo_domain = 'mta1.example', carries_mail = true },
                ['ip-2'] = { source_address = '10.0.0.2', ehlo_domain = 'mta2.example',
                  warmup = { gmail = { name = 'kcp-warmup-ip-2-gmail', spec = '96/d,max_burst=4' } } } },
    pools = { p = { { name = 'ip-1', weight = 100 } } },
    tenants = { t1 = { tier = 'premium', external_pool = 'p', warming_pool = 'p', external_locked = false } },
    dkim = { ['a.example'] = { selector = 's1', algorithm = 'rsa-sha256', key_file = '/k/a.example/s1.key' } },
    inbound_domains = { 'bounces.a.example' }, default_pool = 'p', providers = { google = 'gmail' } }]]
  local data, problems = mod.accept(ok_text)
  assert(data and data.node.name == 'n1', 'a good module is accepted: ' .. table.concat(problems or {}, '; '))

  -- every problem is reported, each with the record it belongs to
  local bad = ok_text
    :gsub("tier = 'premium'", "tier = 'gold'")
    :gsub("algorithm = 'rsa%-sha256'", "algorithm = 'md5'")
    :gsub("{ name = 'ip%-1', weight = 100 }", "{ name = 'ip-2', weight = 100 }, { name = 'ip-9', weight = 1 }")
  local none
  none, problems = mod.accept(bad)
  assert(none == nil and #problems == 4, 'four problems expected, got: ' .. table.concat(problems, '; '))
  local all = table.concat(problems, '\n')
  for _, want in ipairs { 'tenant t1', 'dkim a.example', 'does not carry mail', 'unknown source ip%-9' } do
    assert(all:find(want), 'missing problem ' .. want .. ' in ' .. all)
  end

  -- code never runs: the module sees an empty environment
  none, problems = mod.accept "os.exit(1) return {}"
  assert(none == nil and problems[1]:find 'os', 'code is refused: ' .. tostring(problems and problems[1]))
  none, problems = mod.accept 'return { format = 1 }'
  assert(none == nil and problems[1]:find 'unsupported format', 'an older format is refused')

  -- loading trusts only what was verified
  local dir = os.tmpname()
  os.remove(dir)
  local gen, lkg = dir .. '-generated.lua', dir .. '-lkg.lua'
  local function write(path, text)
    local f = assert(io.open(path, 'wb'))
    f:write(text)
    f:close()
  end
  write(gen, ok_text)
  local loaded, from = mod.load { generated = gen, last_known_good = lkg }
  assert(mod.is_empty(loaded) and from == nil, 'an unverified file is not loaded')
  write(gen .. '.sha256', mod.sha256_hex(ok_text))
  loaded, from = mod.load { generated = gen, last_known_good = lkg }
  assert(not mod.is_empty(loaded) and from == gen, 'a verified file is loaded')
  write(gen, ok_text .. ' ')
  write(lkg, ok_text)
  write(lkg .. '.sha256', mod.sha256_hex(ok_text))
  loaded, from = mod.load { generated = gen, last_known_good = lkg }
  assert(from == lkg, 'a file altered after verification falls back to the last known good')
  for _, p in ipairs { gen, gen .. '.sha256', lkg, lkg .. '.sha256' } do
    os.remove(p)
  end
end

return mod
