#!/usr/bin/python3
"""bench.py - what a call costs from Python: sb.call("Echo", "hello") against the same call
from C (echo_loop.c, built here against the same libhyperlight.a), on the demo guest, in
interleaved rounds; prints a table and saves it under bench/results/ (python-<time>.txt).

    make python && python/bench/bench.py [--calls N] [--rounds R]
"""

import argparse
import datetime
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("HL_BUILD", ROOT / "build"))
sys.path.insert(0, str(BUILD / "python" / "lib"))

import hyperlight  # noqa: E402


def build_c(tmp):
    exe = pathlib.Path(tmp) / "echo_loop"
    subprocess.run(["gcc", "-O2", "-std=gnu11", "-I", str(BUILD / "include"), "-o", str(exe),
                    str(pathlib.Path(__file__).with_name("echo_loop.c")), str(BUILD / "lib" / "libhyperlight.a"),
                    "-pthread", "-lseccomp"], check=True)
    return exe


def python_round(sb, n):
    call, clock, times = sb.call, time.perf_counter_ns, []
    for _ in range(n):
        t0 = clock()
        call("Echo", "hello")
        times.append(clock() - t0)
    return times


def c_round(exe, guest, n):
    out = subprocess.run([str(exe), str(guest), str(n)], check=True, capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=3000, help="calls per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    guest = BUILD / "guests" / "demo.elf"
    c_ns, py_ns = [], []
    with tempfile.TemporaryDirectory() as tmp, hyperlight.Sandbox(guest) as sb:
        exe = build_c(tmp)
        assert sb.call("Echo", "hello") == "hello"
        python_round(sb, 500)  # warm up
        for _ in range(a.rounds):  # interleaved: both see the same machine load
            c_ns += c_round(exe, guest, a.calls)
            py_ns += python_round(sb, a.calls)
    c, py = statistics.median(c_ns), statistics.median(py_ns)
    rows = [("C hl_call (echo_loop.c)", c_ns), ("Python sb.call", py_ns)]
    lines = [
        f"# Python binding vs C: Echo(\"hello\") on {guest.name}, {a.rounds} rounds x {a.calls} calls each,",
        "# every call timed; p10/p50/p90 of the per-call times (robust to preemption on a loaded machine)",
        f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}, {platform.node()}, "
        f"Python {platform.python_version()}, /dev/kvm: "
        f"{'kvm_pvm' if os.path.exists('/sys/module/kvm_pvm') else 'hardware KVM'}",
        "",
        f"{'path':<28}{'p10 us':>9}{'p50 us':>9}{'p90 us':>9}{'p50 vs C':>10}",
        *(f"{name:<28}{pct(xs, .1) / 1e3:>9.2f}{pct(xs, .5) / 1e3:>9.2f}{pct(xs, .9) / 1e3:>9.2f}"
          f"{statistics.median(xs) / c:>10.3f}" for name, xs in rows),
        "",
        f"Python overhead per call: {(py - c) / 1e3:.2f} us ({(py / c - 1) * 100:.1f}%), target <= 10%",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"python-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.txt"
    path.write_text(text)
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if py / c <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
