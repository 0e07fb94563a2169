# JSON round trips of a 2,000-record document, 10 times
import json
doc = [{"id": i, "name": "item " + str(i), "tags": ["a", "b", "c"], "price": i * 1.25, "ok": i % 2 == 0}
       for i in range(2000)]
total = 0.0
for k in range(10):
    back = json.loads(json.dumps(doc))
    total += back[1999]["price"] + len(back)
assert total == 10 * (1999 * 1.25 + 2000), total
