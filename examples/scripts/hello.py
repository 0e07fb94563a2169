# hello.py: `hyperlight run examples/scripts/hello.py [NAME]`
import sys, json
name = sys.argv[1] if len(sys.argv) > 1 else "Python"
counts = {}
for ch in "mississippi":
    counts[ch] = counts.get(ch, 0) + 1
print("Hello, %s! MicroPython in a micro-VM: %s" % (name, json.dumps(sorted(counts.items()))))
