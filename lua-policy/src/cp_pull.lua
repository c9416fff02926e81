--[[ The node pulls its own policy: fetch, verify, install, reload.

Usage (init.lua; the loop runs in a spawned task, which keeps the Lua state it started in, so it lives
in the static bootstrap and captures nothing that changes):

  kumo.on('init', function()
    kumo.spawn_task { event_name = 'cp.poll', args = { cp_pull.task_args(settings, CP_DIR) } }
  end)
  kumo.on('cp.poll', function(args)
    cp_pull.run(args[1])          -- kumod passes spawn_task's args as one list
  end)

One pull sends the node token, the ETag of the installed module, and what the node runs: the hash and
copy cp_data.select picks (the same choice every Lua state makes after the epoch bump) and why the
last install failed, if it did; and how many messages kumod holds (its own message_count gauge, read
from its loopback HTTP listener), so that the control plane never deletes a server with mail in it. The control plane counts a version as applied only from that report. A new module is installed only if
its Ed25519 signature verifies against the key pinned in the node settings and the typed checks of
cp_data find nothing wrong; its DKIM keys are written first, as separate files confined to the key
directory. The module then replaces generated.lua atomically with its SHA-256 recorded beside it, and
the config epoch is bumped. The module it replaces becomes the last known good copy only if it is
still exactly what was verified and still checks out. Anything wrong leaves the node as it was.
]]
local kumo = require 'kumo'
local cp_data = require 'cp_data'

local mod = {}

local function write_atomically(path, text)
  local tmp = path .. '.tmp'
  local f, err = io.open(tmp, 'wb')
  if not f then
    return nil, err
  end
  local ok, werr = f:write(text)
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, werr
  end
  return os.rename(tmp, path)
end

--- Install verified text as `path`, with its hash beside it (the hash first: a crash between the two
--- leaves a file that no longer matches, which load ignores in favour of the last known good).
function mod.write_verified(path, text)
  local ok, err = write_atomically(path .. '.sha256', cp_data.sha256_hex(text) .. '\n')
  if ok then
    ok, err = write_atomically(path, text)
  end
  return ok, err
end

--- The ETag of what the node runs (the control plane's ETag is the quoted content SHA-256).
function mod.current_etag(generated)
  local text = cp_data.verified_text(generated)
  return text and ('"' .. cp_data.sha256_hex(text) .. '"') or nil
end

--[[ DKIM private keys come over the same authenticated channel as separate files, never inside the
module. Files are created under the kumod service's umask (UMask=0077: mode 0600). Only plain paths
under the node's key directory are written. ]]
function mod.sync_dkim_keys(client, opts)
  local res = client:get(opts.keys_url):header('Authorization', 'Bearer ' .. opts.token):send()
  if res:status_code() ~= 200 then
    return nil, 'control plane answered ' .. tostring(res:status_code())
  end
  local body = kumo.serde.json_parse(res:text())
  local n = 0
  for _, k in ipairs(body.keys or {}) do
    local path = k.path
    if
      type(path) ~= 'string'
      or path:sub(1, #opts.key_dir + 1) ~= opts.key_dir .. '/'
      or path:find('..', 1, true)
      or not path:match '^[%w%./_-]+$'
    then
      return nil, 'refusing key path ' .. tostring(path)
    end
    local dir = path:match '^(.*)/[^/]+$'
    if dir ~= opts.key_dir then
      -- checked above to be plain characters under key_dir: nothing for a shell to expand
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

-- the node's words travel in a header: printable ASCII only, and short
local function header_text(text)
  return (tostring(text):gsub('[^\32-\126]+', ' '):sub(1, 300))
end

--[[ How many messages this kumod holds: the message_count gauge of its own /metrics (every message
object: queued, in flight, deferred). nil when it cannot be read; the pull goes on without it. ]]
function mod.queued_messages(client, metrics_url)
  local ok, n = pcall(function()
    local res = client:get(metrics_url):send()
    if res:status_code() ~= 200 then
      return nil
    end
    -- a busy node's /metrics runs to megabytes (a gauge per queue): matched in place, never copied
    local text = res:text()
    return tonumber(text:match '^message_count (%d+)' or text:match '\nmessage_count (%d+)')
  end)
  return ok and n or nil
end

--- kumod's own HTTP listener as the node reaches it: a wildcard listen address means loopback.
function mod.metrics_url(http_listen)
  local host, port = tostring(http_listen):match '^(.*):(%d+)$'
  if not host then
    return nil
  end
  if host == '0.0.0.0' or host == '' then
    host = '127.0.0.1'
  elseif host == '[::]' then
    host = '[::1]'
  end
  return 'http://' .. host .. ':' .. port .. '/metrics'
end

--- What the node runs now: the copy cp_data.select picks and its hash (nil for none).
function mod.running(opts)
  local _, copy, hash = cp_data.select { generated = opts.generated, last_known_good = opts.last_known_good }
  return copy, hash
end

--[[ One pull. opts = { url, token, public_key (32 raw bytes), generated, last_known_good, timeout,
keys_url, key_dir (both optional), install_error (the last failed install's reason, to report),
metrics_url (optional: kumod's /metrics, for the count of messages it holds) }.
Returns { status = 'updated'|'unchanged'|'failed', reason, install = true when the module itself was
refused or could not be installed }. ]]
function mod.poll_once(opts)
  local ed25519 = require 'cp_ed25519'
  local ok, result = pcall(function()
    local client = kumo.http.build_client { user_agent = 'kcp-node-policy', timeout = opts.timeout or '10 seconds' }
    local req = client:get(opts.url):header('Authorization', 'Bearer ' .. opts.token)
    local etag = mod.current_etag(opts.generated)
    if etag then
      req:header('If-None-Match', etag)
    end
    local copy, hash = mod.running(opts)
    req:header('X-KCP-Running-SHA256', hash or 'none')
    req:header('X-KCP-Running-Copy', copy)
    if opts.install_error then
      req:header('X-KCP-Install-Error', header_text(opts.install_error))
    end
    local queued = opts.metrics_url and mod.queued_messages(client, opts.metrics_url)
    if queued then
      req:header('X-KCP-Queued-Messages', string.format('%d', queued))
    end
    local res = req:send()
    local status = res:status_code()
    if status == 304 then
      return { status = 'unchanged' }
    end
    if status ~= 200 then
      return { status = 'failed', reason = 'control plane answered ' .. tostring(status) }
    end
    local signature = res:headers()['x-kcp-signature']
    -- the exact bytes that were signed, not a decoded string
    local text = res:bytes()
    if not signature then
      return { status = 'failed', install = true, reason = 'unsigned module refused' }
    end
    local sig_ok, sig = pcall(kumo.encode.base64_decode, signature)
    local sha512 = function(...)
      return kumo.digest.sha512(...).bytes
    end
    if not sig_ok or not ed25519.verify(opts.public_key, text, sig, sha512) then
      return { status = 'failed', install = true, reason = 'signature does not verify: module refused' }
    end
    local data, problems = cp_data.accept(text, '=cp_pulled')
    if not data then
      return { status = 'failed', install = true, reason = 'module refused: ' .. table.concat(problems, '; ') }
    end
    if opts.keys_url then
      -- keys first: a module naming a key file that is not there yet would fail to sign
      local written, kerr = mod.sync_dkim_keys(client, opts)
      if not written then
        return { status = 'failed', install = true, reason = 'DKIM keys: ' .. tostring(kerr) }
      end
    end
    -- only a module that was verified, and still is, and loads, becomes the fallback
    local current = cp_data.verified_text(opts.generated)
    if current and cp_data.accept(current, '=cp_current') then
      assert(mod.write_verified(opts.last_known_good, current))
    end
    assert(mod.write_verified(opts.generated, text))
    kumo.bump_config_epoch()
    return { status = 'updated' }
  end)
  if not ok then
    result = { status = 'failed', reason = tostring(result) }
  end
  if result.status == 'failed' then
    kumo.log_error('cp: policy pull failed: ' .. result.reason)
  elseif result.status == 'updated' then
    kumo.log_info 'cp: installed a new policy module'
  end
  return result
end

local function hex_to_bytes(hex)
  return (hex:gsub('%x%x', function(h)
    return string.char(tonumber(h, 16))
  end))
end

--- What the pull task needs, as one JSON-able table (spawn_task's args are JSON).
function mod.task_args(settings, cp_dir)
  local base = settings.control_plane_url .. '/v1/nodes/' .. settings.node_id
  return {
    url = base .. '/policy',
    keys_url = base .. '/dkim-keys',
    token = settings.node_token,
    public_key_hex = settings.policy_public_key_hex,
    interval_seconds = settings.poll_interval_seconds,
    key_dir = settings.dkim_key_dir,
    metrics_url = mod.metrics_url(settings.http_listen),
    generated = cp_dir .. '/generated.lua',
    last_known_good = cp_dir .. '/last-known-good.lua',
  }
end

--[[ The pull loop: every failure is logged and retried at the next interval; nothing ends it. After
an install it pulls again at once, so the control plane learns that the node runs the new module
without waiting an interval; a refused module's reason goes with the following pulls until one
installs or the control plane serves what the node runs. ]]
-- how often the pull carries the queue count: the control plane wants one at most two minutes old,
-- and reading /metrics on every pull (every few seconds) would be most of the loop's work
local QUEUE_REPORT_EVERY_SECONDS = 30

function mod.run(args)
  local public_key = hex_to_bytes(args.public_key_hex)
  local install_error
  local next_queue_report = 0
  while true do
    local report_queue = args.metrics_url and os.time() >= next_queue_report
    if report_queue then
      next_queue_report = os.time() + QUEUE_REPORT_EVERY_SECONDS
    end
    local result = mod.poll_once {
      url = args.url,
      token = args.token,
      public_key = public_key,
      generated = args.generated,
      last_known_good = args.last_known_good,
      keys_url = args.keys_url,
      key_dir = args.key_dir,
      metrics_url = report_queue and args.metrics_url or nil,
      install_error = install_error,
    }
    if result.status == 'failed' then
      if result.install then
        install_error = result.reason
      end
    else
      install_error = nil
    end
    if result.status ~= 'updated' then
      kumo.time.sleep(args.interval_seconds)
    end
  end
end

function mod:test()
  local base = os.tmpname()
  os.remove(base)
  local path = base .. '-generated.lua'
  local text = "return { format = 2, node = { name = 'n' }, sources = {}, pools = {}, tenants = {}, dkim = {}, inbound_domains = {}, providers = {} }"
  assert(mod.write_verified(path, text))
  assert(cp_data.verified_text(path) == text, 'what was written is what verifies')
  assert(mod.current_etag(path) == '"' .. cp_data.sha256_hex(text) .. '"', 'the ETag is the content hash')
  local f = assert(io.open(path, 'ab'))
  f:write '-- altered'
  f:close()
  assert(mod.current_etag(path) == nil, 'an altered file has no ETag: the next pull fetches the module again')
  os.remove(path)
  os.remove(path .. '.sha256')
  local args = mod.task_args({ control_plane_url = 'https://cp', node_id = 'n1', node_token = 't', policy_public_key_hex = '00', poll_interval_seconds = 5, dkim_key_dir = '/k' }, '/cp')
  assert(args.url == 'https://cp/v1/nodes/n1/policy' and args.generated == '/cp/generated.lua')
  assert(hex_to_bytes '41ff' == 'A\255')
  assert(mod.metrics_url '0.0.0.0:8000' == 'http://127.0.0.1:8000/metrics')
  assert(mod.metrics_url '[::]:8000' == 'http://[::1]:8000/metrics')
  assert(mod.metrics_url '10.0.0.7:8000' == 'http://10.0.0.7:8000/metrics')
  assert(mod.metrics_url 'nonsense' == nil)
  local scripted = { get = function(_, url)
    return { send = function()
      return { status_code = function() return 200 end, text = function() return '# TYPE message_count gauge\nmessage_count_x 1\nmessage_count 42\n' end }
    end }
  end }
  assert(mod.queued_messages(scripted, 'http://127.0.0.1:8000/metrics') == 42)
  assert(mod.queued_messages({ get = function() error 'refused' end }, 'x') == nil, 'an unreadable gauge is no count')
end

return mod
