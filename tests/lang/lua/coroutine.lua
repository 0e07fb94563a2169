-- coroutines: create/resume/yield/status, wrap, yield across pcall, close
local co = coroutine.create(function(a, b)
    print("start", a, b)
    local c = coroutine.yield(a + b)
    print("got", c)
    local d, e = coroutine.yield(c * 2)
    return d + e
end)
print(coroutine.status(co), coroutine.resume(co, 1, 2))
print(coroutine.status(co), coroutine.resume(co, 10))
print(coroutine.resume(co, 3, 4))
print(coroutine.status(co), coroutine.resume(co))
local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
print(gen(), gen(), gen())
-- a yield inside pcall inside a coroutine
local co2 = coroutine.wrap(function()
    local ok, v = pcall(function()
        local x = coroutine.yield("inside pcall")
        error("after " .. x)
    end)
    coroutine.yield(tostring(ok) .. " " .. v)
    return "done"
end)
print(co2()) print(co2("resume")) print(co2())
print(pcall(co2))
local co3 = coroutine.create(function() error({code = 7}) end)
local ok, e = coroutine.resume(co3)
print(ok, type(e), e.code, coroutine.status(co3))
print(coroutine.isyieldable(), type(coroutine.running()), select(2, coroutine.running()))
print(select(2, coroutine.resume(coroutine.create(function() return coroutine.isyieldable(), select(2, coroutine.running()) end))))
local co4 = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() print("closed") end}) coroutine.yield() end)
coroutine.resume(co4)
print(coroutine.close(co4), coroutine.status(co4))
print(pcall(coroutine.yield, 1))
local function producer() return coroutine.wrap(function() for _, w in ipairs({"a", "b", "c"}) do coroutine.yield(w) end end) end
local out = {}
for w in producer() do out[#out + 1] = w end
print(table.concat(out))
print(coroutine.resume(coroutine.wrap(function() end) and coroutine.create(function(...) return select("#", ...) end), nil, nil))
