#!/usr/bin/python3
"""host_capability.py - give sandboxed code one safe capability: a host function the script
calls as host.NAME(...). Here a read-only lookup in the host's price list; the script reaches
nothing else of the host (no files, network, clock or environment).

    PYTHONPATH=build/python/lib python/examples/host_capability.py
"""

import hyperlight

PRICES = {"apple": 0.5, "bread": 2.25, "milk": 1.1}


def price(item: str) -> float:
    """The price of item; an unknown item is an error the script can catch."""
    if item not in PRICES:
        raise KeyError(item)  # the script sees RuntimeError: host.Price: KeyError: 'item'
    return PRICES[item]


SCRIPTS = {
    "python": "sum(host.Price(i) * n for i, n in [('apple', 4), ('bread', 1)])",
    "lua": "return host.Price('apple') * 4 + host.Price('bread')",
    "javascript": "host.Price('apple') * 4 + host.Price('bread')",
}


def main() -> None:
    for lang, code in SCRIPTS.items():
        try:
            interp = hyperlight.Interpreter(lang, host_functions={"Price": price})
        except hyperlight.GuestNotFound as e:
            print(f"{lang}: skipped ({e})")
            continue
        with interp:
            r = interp.run(code)
            print(f"{lang}: {r.value}")
            assert r.value == 4.25, r
            r = interp.run("host.Price('caviar')")
            print(f"{lang}: {r.error}")
            assert r.error.kind == "script" and "caviar" in r.error.message, r
    print("ok")


if __name__ == "__main__":
    main()
