# string building: formatting, concatenation through a buffer, searching
parts = []
for i in range(1, 200001):
    parts.append("%d:%s;" % (i, "x" * (i % 7)))
s = "".join(parts)
n = s.count("xxxxxx;")
assert len(s) == 2088892 and n == 28571, (len(s), n)
