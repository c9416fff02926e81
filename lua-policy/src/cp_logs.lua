--[[ Delivery records back to the control plane, classified by KumoMTA's bounce classifier.

Usage (init.lua):

  local log_hooks = require 'policy-extras.log_hooks'
  local cp_logs = require 'cp_logs'
  cp_logs.setup_hook(log_hooks, settings)   -- top level, before any catch-all get_queue_config
  kumo.on('init', function()
    cp_logs.configure_bounce_classifier(settings)
  end)

The hook (policy-extras.log_hooks, name `kcp`) batches records and POSTs them as a JSON array to
`/v1/events/kumo` with the node token. Any answer but 2xx is a 4xx rejection, so kumod keeps the
batch and retries it with backoff: a control plane that is down, or a rotated token, costs delay,
never records. Records carry the tenant and lane meta the relay listener set, and the Message-ID.

The bounce classifier is KumoMTA's, with the IANA enhanced-status-code rules it ships
(`share/bounce_classifier/iana.toml`): without it every record says `Uncategorized`.
]]
local kumo = require 'kumo'

local mod = {}

mod.HOOK_NAME = 'kcp'
mod.BATCH_SIZE = 200

--[[ Queues that carry log records to their consumers: log hooks (`<name>.log_hook`, policy-extras.
log_hooks) and the TSA publisher (`<url>.tsa.kumomta`, policy-extras.shaping). The helpers route them
(custom_lua); their paths get node-local limits: with Redis-shared throttles a limit named after the
same ready queue on every node would be one limit for the whole fleet. ]]
function mod.is_log_queue(domain)
  return domain ~= nil and (domain:find('%.log_hook$') ~= nil or domain:find('%.tsa%.kumomta$') ~= nil)
end

function mod.sender(opts)
  local client = kumo.http.build_client { user_agent = 'kcp-node-logs', timeout = '30 seconds' }
  local sender = {}
  function sender:send_batch(messages)
    local records = {}
    for i, msg in ipairs(messages) do
      records[i] = msg:get_meta 'log_record'
    end
    local res = client
      :post(opts.url)
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

--- The log hook's parameters (everything but the constructor), so tests can read them.
function mod.hook_params()
  return {
    name = mod.HOOK_NAME,
    batch_size = mod.BATCH_SIZE,
    max_batch_latency = '2 seconds',
    log_parameters = { meta = { 'tenant', 'kcp_lane' }, headers = { 'Message-ID' } },
    queue_config = { retry_interval = '1 minute', max_retry_interval = '20 minutes' },
  }
end

function mod.setup_hook(log_hooks, settings)
  local params = mod.hook_params()
  params.constructor = function()
    return mod.sender { url = settings.control_plane_url .. '/v1/events/kumo', token = settings.node_token }
  end
  log_hooks:new(params)
end

function mod.classifier_files(settings)
  return { settings.kumo_share_dir .. '/bounce_classifier/iana.toml' }
end

--- Call in init (kumod keeps one classifier per process).
function mod.configure_bounce_classifier(settings)
  kumo.configure_bounce_classifier { files = mod.classifier_files(settings) }
end

function mod:test()
  local p = mod.hook_params()
  assert(p.batch_size == 200 and p.log_parameters.meta[1] == 'tenant', 'hook parameters')
  assert(mod.classifier_files({ kumo_share_dir = '/s' })[1] == '/s/bounce_classifier/iana.toml')
  assert(mod.is_log_queue 'kcp.log_hook' and mod.is_log_queue 'http://10.0.0.1:8008.tsa.kumomta')
  assert(not mod.is_log_queue 'gmail.com' and not mod.is_log_queue(nil))
  local sender = mod.sender { url = 'http://127.0.0.1:9/v1/events/kumo', token = 't' }
  assert(type(sender.send_batch) == 'function' and type(sender.close) == 'function', 'a batching connection')
  sender:close()
end

return mod
