-- limits: deep Lua recursion, nested C calls and memory exhaustion are Lua errors, and the
-- script goes on after each
local function down(n) return 1 + down(n + 1) end
print(pcall(down, 1))
local function nest(n) if n == 0 then return "" end return (string.gsub("x", "x", function() return nest(n - 1) end)) end
print(pcall(nest, 1000))
local ok, e = pcall(function() local t = {} for i = 1, 1e9 do t[i] = {i} end end)
print(ok, e)
collectgarbage()
local ok2, e2 = pcall(string.rep, "x", 1 << 40)
print(ok2, e2)
print(select("#", pcall(error)), "still running")
