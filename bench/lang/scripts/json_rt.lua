-- JSON round trips of a 2,000-record document, 10 times (Lua has no JSON library: a small
-- encoder and decoder in Lua, the same code natively and in the guest)
local concat, fmt, byte, sub, find = table.concat, string.format, string.byte, string.sub, string.find
local function encode(v, out)
  local t = type(v)
  if t == "table" then
    if #v > 0 then
      out[#out + 1] = "["
      for i = 1, #v do if i > 1 then out[#out + 1] = "," end encode(v[i], out) end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for k, x in pairs(v) do
        if not first then out[#out + 1] = "," end
        first = false
        out[#out + 1] = fmt("%q:", k)
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then out[#out + 1] = '"' .. v .. '"'
  elseif t == "number" then out[#out + 1] = math.type(v) == "integer" and tostring(v) or fmt("%.17g", v)
  else out[#out + 1] = tostring(v) end
end
local decode
local function skip(s, i) return find(s, "[^ \n\r\t]", i) end
function decode(s, i)
  i = skip(s, i)
  local c = byte(s, i)
  if c == 123 then -- {
    local obj = {}
    i = skip(s, i + 1)
    if byte(s, i) == 125 then return obj, i + 1 end
    while true do
      local k; k, i = decode(s, i)
      i = skip(s, i) + 1 -- ':'
      obj[k], i = decode(s, i)
      i = skip(s, i)
      if byte(s, i) == 125 then return obj, i + 1 end
      i = i + 1 -- ','
    end
  elseif c == 91 then -- [
    local arr = {}
    i = skip(s, i + 1)
    if byte(s, i) == 93 then return arr, i + 1 end
    while true do
      arr[#arr + 1], i = decode(s, i)
      i = skip(s, i)
      if byte(s, i) == 93 then return arr, i + 1 end
      i = i + 1
    end
  elseif c == 34 then -- "
    local j = find(s, '"', i + 1, true)
    return sub(s, i + 1, j - 1), j + 1
  elseif c == 116 then return true, i + 4
  elseif c == 102 then return false, i + 5
  elseif c == 110 then return nil, i + 4
  else
    local j = find(s, "[^%d%.eE+-]", i) or #s + 1
    return math.tointeger(tonumber(sub(s, i, j - 1))) or tonumber(sub(s, i, j - 1)), j
  end
end
local doc = {}
for i = 0, 1999 do doc[#doc + 1] = { id = i, name = "item " .. i, tags = { "a", "b", "c" }, price = i * 1.25, ok = i % 2 == 0 } end
local total = 0
for _ = 1, 10 do
  local out = {}
  encode(doc, out)
  local back = decode(concat(out), 1)
  total = total + back[2000].price + #back
end
assert(total == 10 * (1999 * 1.25 + 2000), total)
