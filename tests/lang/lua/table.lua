-- table library: sort, concat, move, unpack, insert/remove, pack
local t = {5, 2, 8, 1, 9, 3}
table.sort(t)
print(table.concat(t, " "))
table.sort(t, function(a, b) return a > b end)
print(table.concat(t, " "))
local names = {"bob", "Alice", "carol", "Dave"}
table.sort(names, function(a, b) return a:lower() < b:lower() end)
print(table.concat(names, ","))
print(pcall(table.sort, {3, 1, "x"}))
print(table.concat({1, 2, 3}, ", ", 2, 3), table.concat({}, "x"), table.concat({"a"}, "-", 1, 1))
print(pcall(table.concat, {1, {}, 3}))
local m = table.move({1, 2, 3, 4, 5}, 2, 4, 1)
print(table.concat(m, " "))
print(table.concat(table.move({1, 2, 3}, 1, 3, 3, {9, 9}), " "))
print(table.unpack({1, 2, 3})) print(table.unpack({1, 2, 3}, 2)) print(table.unpack({1, 2, 3}, 2, 3)) print(select("#", table.unpack({}, 1, 3)))
local q = {}
table.insert(q, "a") table.insert(q, "c") table.insert(q, 2, "b") table.insert(q, 1, "z")
print(table.concat(q), table.remove(q), table.remove(q, 1), table.concat(q), #q)
print(pcall(table.insert, q, 10, "x"))
local p = table.pack(1, nil, 3)
print(p.n, p[1], p[2], p[3])
local big = {}
for i = 1, 1000 do big[i] = (i * 7919) % 1000 end
table.sort(big)
local ok = true
for i = 2, 1000 do if big[i - 1] > big[i] then ok = false end end
print(ok, big[1], big[1000], #big)
