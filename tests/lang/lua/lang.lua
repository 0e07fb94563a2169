-- the language: goto, metatables, __gc, __close, <const>, load with env, varargs, closures
for i = 1, 3 do
    for j = 1, 3 do
        if j == 2 then goto continue end
        io.write(i, j, " ")
        ::continue::
    end
end
print()
do local k = 0 ::top:: k = k + 1 if k < 5 then goto top end print("k", k) end
local V = {}
V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x}, V) end
V.__eq = function(a, b) return a.x == b.x end
V.__lt = function(a, b) return a.x < b.x end
V.__le = function(a, b) return a.x <= b.x end
V.__len = function(a) return a.x end
V.__call = function(self, y) return self.x * y end
V.__concat = function(a, b) return "V" .. (type(a) == "table" and a.x or a) .. (type(b) == "table" and b.x or b) end
V.__tostring = function(a) return "V(" .. a.x .. ")" end
V.__unm = function(a) return setmetatable({x = -a.x}, V) end
V.__name = "Vector"
function V.new(x) return setmetatable({x = x}, V) end
function V:double() return V.new(self.x * 2) end
local a, b = V.new(1), V.new(2)
print(tostring(a + b), a == V.new(1), a < b, b <= a, #b, a(10), a .. "!", tostring(-b), tostring(b:double()))
local log = {}
local proxy = setmetatable({}, {__index = function(_, k) return k .. "?" end, __newindex = function(t, k, v) rawset(t, k, v * 2) log[#log + 1] = k end})
proxy.y = 5
print(proxy.x, proxy.y, rawget(proxy, "x"), log[1], rawlen({1, 2}), rawequal(a, V.new(1)))
print(getmetatable("abc").__index == string, getmetatable(setmetatable({}, {__metatable = "locked"})))
do
    local gced = {}
    setmetatable({}, {__gc = function() gced[#gced + 1] = "gc ran" end})
    collectgarbage() collectgarbage()
    print(gced[1])
end
do
    local order = {}
    do
        local x <close> = setmetatable({}, {__close = function(_, err) order[#order + 1] = "x" .. tostring(err) end})
        local y <close> = setmetatable({}, {__close = function() order[#order + 1] = "y" end})
        local z <close> = nil
        order[#order + 1] = "body"
    end
    print(table.concat(order, " "))
    print(pcall(function() local w <close> = setmetatable({}, {__close = function(_, e) print("closing with", e) end}) error("E", 0) end))
    print(pcall(load, "local c <const> = 1; c = 2"))
    print(load("local c <const> = 1; c = 2"))
end
local env = {print = print, x = 42}
local f = load("x = x + 1 return x, y", "chunk", "t", env)
print(f(), env.x, x)
print(load("return ...", "=c")(1, 2, 3))
print(type(load(function() return nil end)))
local parts = {"return ", "1 + ", "2"}
local i = 0
print(load(function() i = i + 1 return parts[i] end)())
print(load("syntax error here"))
print(pcall(load, "return 1", "b", "b"))
print(select("#"), select("#", nil, nil), select(2, "a", "b", "c"), select(-1, "a", "b", "c"))
local function va(...) local t = {...} return select("#", ...), #t, ... end
print(va(1, nil, 3))
print(pcall(select, 0, 1))
local function counter() local n = 0 return function() n = n + 1 return n end end
local c1, c2 = counter(), counter()
print(c1(), c1(), c2(), c1())
local s = 0
for i = 10, 1, -3 do s = s + i end
print(s, #"abc", #{1, 2, 3}, 2^10, "x" == "x", nil == false, not nil, 1 and 2, nil or "d", false or nil)
local t = {10, 20, 30, n = 3}
local keys = 0
for k, v in pairs(t) do keys = keys + 1 end
for i, v in ipairs(t) do io.write(i, "=", v, " ") end
print(keys, next({}), type(next), type(nil), type({}), type("") , type(2), type(print), type(true))
print(string.format("%s %s", pcall(error)))
print(math.maxinteger, math.mininteger, 9007199254740993, -9223372036854775807 - 1)
