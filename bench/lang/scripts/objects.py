# many small objects: build, read, update by string key, drop
rows = [{"id": i, "name": "n" + str(i), "v": i * 0.5} for i in range(1, 100001)]
total = 0.0
for r in rows:
    total += r["v"]
byname = {}
for i in range(50000):
    byname[rows[i]["name"]] = rows[i]
for i in range(1, 50001):
    byname["n" + str(i)]["v"] += 1
assert total == 2500025000 and byname["n7"]["v"] == 4.5
