--[[ Checks with KumoMTA's policy-extras.typing, reported as an operator reads them.

Usage:

  local cp_typing = require 'cp_typing'
  local Point = typing.record('Point', { x = typing.number })
  local problem = cp_typing.problem(Point, { x = 'one' })
  -- "Point: invalid value for field 'x': Expected 'number', got 'string' 'one'", or nil

typing raises on the first bad field of a record and prefixes every line of its error with the Lua
file and line that made it; callers here check each record on its own, so every bad record is named,
and only the words remain.
]]
local mod = {}

--- The words of a typing error (or any error): one line, without file:line prefixes.
function mod.text(err)
  local parts = {}
  for line in (tostring(err) .. '\n'):gmatch '([^\n]*)\n' do
    local n
    repeat
      line, n = line:gsub('^%S+:%d+:? ', '')
    until n == 0
    -- the wrapper around a nested record's own error says nothing the nested one does not
    if line ~= '' and not line:find('encountered an error during coercion', 1, true) then
      parts[#parts + 1] = line
    end
  end
  return table.concat(parts, ': ')
end

--- nil when the value has the type, else what is wrong with it.
function mod.problem(ty, value)
  local ok, status, err = pcall(ty.validate_value, ty, value)
  if not ok then
    return mod.text(status)
  end
  if status then
    return nil
  end
  return mod.text(err or ('not a ' .. tostring(ty.name)))
end

function mod:test()
  local typing = require 'policy-extras.typing'
  local Point = typing.record('Point', { x = typing.number, y = typing.option(typing.number) })
  assert(mod.problem(Point, { x = 1 }) == nil, 'a good value has no problem')
  local p = mod.problem(Point, { x = 'one' })
  assert(p and p:find("invalid value for field 'x'", 1, true) and p:find("Expected 'number'", 1, true) and not p:find '\n', tostring(p))
  assert(not p:find '%.lua:%d', 'no file:line prefixes: ' .. p)
  assert(mod.problem(Point, { y = 2 }):find("missing value for field 'x'", 1, true))
  assert(mod.problem(Point, { x = 1, z = 3 }):find("unknown field 'z'", 1, true))
  assert(mod.problem(typing.list(typing.string), { 'a', 2 }):find('idx 2', 1, true))
end

return mod
