--[[ Drives a node policy in the kumo double: boot it from a generated module, then send messages
through reception and routing the way kumod would, returning plain tables for the tests. ]]
local harness = {}
local double

function harness.boot(generated_path, opts)
  opts = opts or {}
  package.loaded.kumo = nil
  package.loaded.cp_runtime = nil
  double = require 'kumo_double'
  double.install()
  local cp = require 'cp_runtime'
  local data = cp.load { generated = generated_path, last_known_good = opts.last_known_good }
  cp.setup(data)
  harness.cp = cp
  harness.data = data
  return double
end

--- Reception: returns meta, remaining header names, the rejection (if any) and the DKIM signer.
function harness.receive(spec)
  local headers = {
    { 'From', spec.from or 'News <news@acme.example>' },
    { 'To', spec.to or 'someone@gmail.com' },
    { 'Subject', 'hello' },
  }
  if spec.tenant then headers[#headers + 1] = { 'X-KCP-Tenant', spec.tenant } end
  if spec.lane then headers[#headers + 1] = { 'X-KCP-Lane', spec.lane } end
  local msg = double.message { headers = headers }
  local ok, err = pcall(double.fire, 'smtp_server_message_received', msg)
  local names = {}
  for _, h in ipairs(msg:headers()) do names[#names + 1] = h[1] end
  local result = { meta = msg:all_meta(), headers = names, signed_with = msg.signed_with[1] }
  if not ok then
    if type(err) == 'table' and err.kumo_reject then
      result.rejected = { code = err.code, message = err.message }
    else
      error(err)
    end
  end
  return result
end

--- Routing: queue config -> pool -> sources, as kumod resolves them.
function harness.route(domain, tenant, campaign)
  local qc = double.fire('get_queue_config', domain, tenant, campaign, nil)
  local out = { egress_pool = qc.egress_pool, sources = {} }
  if qc.egress_pool then
    local pool = double.fire('get_egress_pool', qc.egress_pool)
    for _, e in ipairs(pool.entries) do
      local src = double.fire('get_egress_source', e.name)
      out.sources[#out.sources + 1] = { name = src.name, source_address = src.source_address, ehlo_domain = src.ehlo_domain, weight = e.weight }
    end
  end
  return out
end

function harness.path(source, site)
  local p = double.fire('get_egress_path_config', 'x.example', source, site)
  local out = {}
  for k, v in pairs(p) do out[k] = v end
  return out
end

return harness
