-- string building: formatting, concatenation through a buffer, searching
local parts = {}
for i = 1, 200000 do parts[#parts + 1] = string.format("%d:%s;", i, string.rep("x", i % 7)) end
local s = table.concat(parts)
local n = 0
for _ in s:gmatch("xxxxxx;") do n = n + 1 end
assert(#s == 2088892 and n == 28571, #s .. " " .. n)
