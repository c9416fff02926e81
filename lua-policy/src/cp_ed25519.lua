--[[ Ed25519 signature verification (RFC 8032) in plain Lua 5.4, for checking policy modules before a
node compiles them. KumoMTA's Lua offers SHA-512 (kumo.digest.sha512) but no signature checks, so
the curve arithmetic lives here: field elements mod 2^255 - 19 as 16 limbs of 16 bits held in 64-bit
integers, points in extended coordinates, the same formulas as the compact public-domain reference
designs. Verification only: no secrets pass through here, so constant time is not a concern.

Usage:
  local ed25519 = require 'cp_ed25519'
  local ok = ed25519.verify(public_key_32_bytes, message, signature_64_bytes, sha512)
where sha512(...) returns the 64-byte digest of its string arguments concatenated.
]]
local M = {}

local function gf(init)
  local o = {}
  for i = 1, 16 do o[i] = init and init[i] or 0 end
  return o
end

local gf0 = gf()
local gf1 = gf { 1 }
local D = gf { 0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070, 0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203 }
local D2 = gf { 0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0, 0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406 }
local X = gf { 0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c, 0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169 }
local Y = gf { 0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666 }
local I = gf { 0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43, 0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83 }
-- the group order L, little-endian bytes
local L = { 0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 }

local function set(o, a) for i = 1, 16 do o[i] = a[i] end end

-- Lua's >> is a logical shift; carries need the arithmetic (floor) one
local function car(o)
  for i = 1, 16 do
    o[i] = o[i] + 65536
    local c = o[i] // 65536
    if i < 16 then
      o[i + 1] = o[i + 1] + c - 1
    else
      o[1] = o[1] + 38 * (c - 1)
    end
    o[i] = o[i] - c * 65536
  end
end

local function sel(p, q, b)
  local c = ~(b - 1)
  for i = 1, 16 do
    local t = c & (p[i] ~ q[i])
    p[i] = p[i] ~ t
    q[i] = q[i] ~ t
  end
end

local function pack25519(n)
  local t, m = gf(n), gf()
  car(t); car(t); car(t)
  for _ = 1, 2 do
    m[1] = t[1] - 0xffed
    for i = 2, 15 do
      m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1)
      m[i - 1] = m[i - 1] & 0xffff
    end
    m[16] = t[16] - 0x7fff - ((m[15] >> 16) & 1)
    local b = (m[16] >> 16) & 1
    m[15] = m[15] & 0xffff
    sel(t, m, 1 - b)
  end
  local o = {}
  for i = 1, 16 do
    o[2 * i - 1] = t[i] & 0xff
    o[2 * i] = (t[i] >> 8) & 0xff
  end
  return o
end

local function bytes_equal(a, b)
  for i = 1, 32 do if a[i] ~= b[i] then return false end end
  return true
end

local function neq(a, b) return not bytes_equal(pack25519(a), pack25519(b)) end
local function par(a) return pack25519(a)[1] & 1 end

local function unpack25519(bytes)
  local o = gf()
  for i = 1, 16 do o[i] = bytes[2 * i - 1] + (bytes[2 * i] << 8) end
  o[16] = o[16] & 0x7fff
  return o
end

local function A(o, a, b) for i = 1, 16 do o[i] = a[i] + b[i] end end
local function Z(o, a, b) for i = 1, 16 do o[i] = a[i] - b[i] end end

local function Mul(o, a, b)
  local t = {}
  for i = 1, 31 do t[i] = 0 end
  for i = 1, 16 do
    local ai = a[i]
    for j = 1, 16 do t[i + j - 1] = t[i + j - 1] + ai * b[j] end
  end
  for i = 1, 15 do t[i] = t[i] + 38 * t[i + 16] end
  for i = 1, 16 do o[i] = t[i] end
  car(o); car(o)
end

local function Sq(o, a) Mul(o, a, a) end

local function inv25519(i)
  local c = gf(i)
  for a = 253, 0, -1 do
    Sq(c, c)
    if a ~= 2 and a ~= 4 then Mul(c, c, i) end
  end
  return c
end

local function pow2523(i)
  local c = gf(i)
  for a = 250, 0, -1 do
    Sq(c, c)
    if a ~= 1 then Mul(c, c, i) end
  end
  return c
end

local function add(p, q)
  local a, b, c, d, t, e, f, g, h = gf(), gf(), gf(), gf(), gf(), gf(), gf(), gf(), gf()
  Z(a, p[2], p[1]); Z(t, q[2], q[1]); Mul(a, a, t)
  A(b, p[1], p[2]); A(t, q[1], q[2]); Mul(b, b, t)
  Mul(c, p[4], q[4]); Mul(c, c, D2)
  Mul(d, p[3], q[3]); A(d, d, d)
  Z(e, b, a); Z(f, d, c); A(g, d, c); A(h, b, a)
  Mul(p[1], e, f); Mul(p[2], h, g); Mul(p[3], g, f); Mul(p[4], e, h)
end

local function cswap(p, q, b) for i = 1, 4 do sel(p[i], q[i], b) end end

local function pack(p)
  local zi = inv25519(p[3])
  local tx, ty = gf(), gf()
  Mul(tx, p[1], zi)
  Mul(ty, p[2], zi)
  local r = pack25519(ty)
  r[32] = r[32] ~ (par(tx) << 7)
  return r
end

local function scalarmult(q, s)
  local p = { gf(gf0), gf(gf1), gf(gf1), gf(gf0) }
  for i = 255, 0, -1 do
    local b = (s[(i >> 3) + 1] >> (i & 7)) & 1
    cswap(p, q, b)
    add(q, p)
    add(p, p)
    cswap(p, q, b)
  end
  return p
end

local function scalarbase(s)
  local q = { gf(X), gf(Y), gf(gf1), gf() }
  Mul(q[4], X, Y)
  return scalarmult(q, s)
end

-- reduce a 64-byte little-endian number modulo L
local function modL(x)
  for i = 63, 32, -1 do
    local carry = 0
    local j = i - 32
    while j < i - 12 do
      x[j + 1] = x[j + 1] + carry - 16 * x[i + 1] * L[j - (i - 32) + 1]
      carry = (x[j + 1] + 128) // 256
      x[j + 1] = x[j + 1] - carry * 256
      j = j + 1
    end
    x[j + 1] = x[j + 1] + carry
    x[i + 1] = 0
  end
  local carry = 0
  for j = 0, 31 do
    x[j + 1] = x[j + 1] + carry - (x[32] // 16) * L[j + 1]
    carry = x[j + 1] // 256
    x[j + 1] = x[j + 1] & 255
  end
  for j = 0, 31 do x[j + 1] = x[j + 1] - carry * L[j + 1] end
  local r = {}
  for i = 0, 31 do
    x[i + 2] = x[i + 2] + (x[i + 1] // 256)
    r[i + 1] = x[i + 1] & 255
  end
  return r
end

local function unpackneg(p)
  local r = { gf(), gf(), gf(gf1), gf() }
  r[2] = unpack25519(p)
  local num, den, den2, den4, den6, t, chk = gf(), gf(), gf(), gf(), gf(), gf(), gf()
  Sq(num, r[2])
  Mul(den, num, D)
  Z(num, num, r[3])
  A(den, r[3], den)
  Sq(den2, den); Sq(den4, den2); Mul(den6, den4, den2); Mul(t, den6, num); Mul(t, t, den)
  t = pow2523(t)
  Mul(t, t, num); Mul(t, t, den); Mul(t, t, den); Mul(r[1], t, den)
  Sq(chk, r[1]); Mul(chk, chk, den)
  if neq(chk, num) then Mul(r[1], r[1], I) end
  Sq(chk, r[1]); Mul(chk, chk, den)
  if neq(chk, num) then return nil end
  if par(r[1]) == (p[32] >> 7) then Z(r[1], gf0, r[1]) end
  Mul(r[4], r[1], r[2])
  return r
end

local function to_bytes(s)
  return { s:byte(1, -1) }
end

-- S must be below L (RFC 8032 5.1.7), or signatures would be malleable
local function scalar_below_L(s)
  for i = 32, 1, -1 do
    if s[i] < L[i] then return true end
    if s[i] > L[i] then return false end
  end
  return false
end

function M.verify(public_key, message, signature, sha512)
  if type(public_key) ~= 'string' or #public_key ~= 32 then return false end
  if type(signature) ~= 'string' or #signature ~= 64 then return false end
  local pk = to_bytes(public_key)
  local R = signature:sub(1, 32)
  local S = to_bytes(signature:sub(33, 64))
  if not scalar_below_L(S) then return false end
  local q = unpackneg(pk)
  if not q then return false end
  local h = modL(to_bytes(sha512(R, public_key, message)))
  local p = scalarmult(q, h)
  local sb = scalarbase(S)
  add(p, sb)
  return bytes_equal(pack(p), to_bytes(R))
end

return M
