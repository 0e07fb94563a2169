-- many small objects: build, read, update by string key, drop
local rows, total = {}, 0
for i = 1, 100000 do rows[i] = { id = i, name = "n" .. i, v = i * 0.5 } end
for i = 1, #rows do total = total + rows[i].v end
local byname = {}
for i = 1, 50000 do byname[rows[i].name] = rows[i] end
for i = 1, 50000 do local r = byname["n" .. i]; r.v = r.v + 1 end
assert(total == 2500025000 and byname.n7.v == 4.5)
