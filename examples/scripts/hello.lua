-- hello.lua: `hyperlight run examples/scripts/hello.lua [NAME]`
local name = arg[1] or "Lua"
local words = {}
for w in ("the quick brown fox jumps over the lazy dog"):gmatch("%a+") do words[#words + 1] = w end
table.sort(words)
print(("Hello, %s! %s in a micro-VM: %d words sorted: %s"):format(name, _VERSION, #words, table.concat(words, " ")))
