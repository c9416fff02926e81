--[[ A small JSON encoder for the test harness: it turns whatever a Lua chunk returned into JSON so the
TypeScript tests can compare it with the value that was rendered. Keys are sorted; integers and
floats are kept apart (a float is written with a decimal point or exponent). Strings are written as
JSON strings of their bytes, which the harness decodes as UTF-8. ]]
local json = {}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
    return map[c] or string.format('\\u%04x', c:byte())
  end) .. '"'
end

local function is_sequence(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= 'integer' or k < 1 then return false end
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true, n
end

function json.encode(v)
  local kind = type(v)
  if kind == 'nil' then return 'null' end
  if kind == 'boolean' then return tostring(v) end
  if kind == 'number' then
    if math.type(v) == 'integer' then return string.format('%d', v) end
    return string.format('{"$float":%.17g}', v)
  end
  if kind == 'string' then return encode_string(v) end
  if kind == 'table' then
    local seq, n = is_sequence(v)
    if seq and n > 0 then
      local parts = {}
      for i = 1, n do parts[i] = json.encode(v[i]) end
      return '[' .. table.concat(parts, ',') .. ']'
    end
    local keys = {}
    for k in pairs(v) do
      if type(k) ~= 'string' then error('non-string key ' .. tostring(k)) end
      keys[#keys + 1] = k
    end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = encode_string(k) .. ':' .. json.encode(v[k]) end
    return '{' .. table.concat(parts, ',') .. '}'
  end
  error('cannot encode a ' .. kind)
end

return json
