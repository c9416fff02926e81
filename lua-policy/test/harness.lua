--[[ Drives a staged node (the real bootstrap, runtime and settings; see control-plane/test/support/
node-dir.ts) in the kumo double: reception and routing the way kumod runs them, results as plain
tables for the TypeScript tests.

Usage:
  local h = require 'harness'
  h.boot(policy_dir, { release = '2025.03.19' })   -- KCP_POLICY_DIR must name policy_dir .. '/cp'
  local rx = h.receive { tenant = '<uuid>', lane = 'external', from = 'a@acme.example' }
  local route = h.route('gmail.com', rx.meta.tenant, rx.meta.campaign)
]]
local harness = {}
local double

harness.RELAY_VIA = '10.0.0.1:2525'
harness.INBOUND_VIA = '10.0.0.1:25'

function harness.boot(policy_dir, opts)
  opts = opts or {}
  for name in pairs(package.loaded) do
    if name:match '^cp_' or name:match '^policy%-extras%.' then
      package.loaded[name] = nil
    end
  end
  double = require 'kumo_double'
  double.install { release = opts.release }
  double.keys_need_not_exist = opts.keys_need_not_exist
  double.shaping = opts.shaping
  dofile(policy_dir .. '/init.lua')
  harness.double = double
  return double
end

local function headers_of(msg)
  local names = {}
  for _, h in ipairs(msg:get_all_headers()) do
    names[#names + 1] = h[1]
  end
  return names
end

--- Reception: returns meta, remaining header names, the rejection (if any) and the DKIM signer.
function harness.receive(spec)
  local lines = {}
  if spec.tenant then
    lines[#lines + 1] = 'X-KCP-Tenant: ' .. spec.tenant
  end
  if spec.lane then
    lines[#lines + 1] = 'X-KCP-Lane: ' .. spec.lane
  end
  lines[#lines + 1] = 'From: ' .. (spec.from or 'News <news@acme.example>')
  lines[#lines + 1] = 'To: ' .. (spec.to or 'someone@gmail.com')
  lines[#lines + 1] = 'Subject: hello'
  local text = spec.raw or (table.concat(lines, '\r\n') .. '\r\n\r\nbody\r\n')
  local msg = double.make_message('news@acme.example', spec.to or 'someone@gmail.com', text)
  msg:set_meta('reception_protocol', 'ESMTP')
  msg:set_meta('received_via', spec.via or harness.RELAY_VIA)
  local ok, err = pcall(double.fire, 'smtp_server_message_received', msg)
  local result = { meta = msg:all_meta(), signed_with = msg.signed_with[1] }
  local hok, names = pcall(headers_of, msg)
  result.headers = hok and names or nil
  if not ok then
    if type(err) == 'table' and err.kumo_reject then
      result.rejected = { code = err.code, message = err.message }
    else
      result.error = tostring(err)
    end
  end
  return result
end

--- Routing: queue config -> pool -> sources, as kumod resolves them.
function harness.route(domain, tenant, campaign)
  local qc = double.fire('get_queue_config', domain, tenant, campaign, nil)
  local out = { egress_pool = qc.egress_pool, sources = {} }
  if qc.egress_pool then
    local pool = double.params_of(double.fire('get_egress_pool', qc.egress_pool))
    for _, e in ipairs(pool.entries) do
      local src = double.params_of(double.fire('get_egress_source', e.name))
      out.sources[#out.sources + 1] = { name = src.name, source_address = src.source_address, ehlo_domain = src.ehlo_domain, weight = e.weight }
    end
  end
  return out
end

function harness.path(domain, source, site)
  local p = double.fire('get_egress_path_config', domain, source, site)
  local out = {}
  for k, v in pairs(p) do
    out[k] = v
  end
  return out
end

return harness
