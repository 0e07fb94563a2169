#!/usr/bin/python3
"""run_bench.py - what hyperlight.run("1+1") costs: warm, per language, against the exit floor
(the "floor: bare VM exit round trip" row of build/bin/hyperlight-bench, run before and after),
and against a process per run (python3 -c, and the same inside bwrap). Prints a table and saves
it under bench/results/ (pyrun-<time>.txt).

    make python && python/bench/run_bench.py [--calls N] [--rounds R] [--procs P]

Rows (per-run times, p10/p50/p90; ratio: p50 / the floor's median):
  Eval on a warm sandbox      sb.call("Eval", "1+1"): the guest's own work, no package code
  Eval + restore              the same and sb.restore(snapshot): what run's pool path must do
  Eval + restore, timeout 1 s the same on a sandbox with run's default time limit (the library
                              arms and disarms a timer per call: two timer_settime calls)
  persistent run              Interpreter(lang, persistent=True).run("1+1"): no restore
  hyperlight.run (pool)       hyperlight.run("1+1", lang): a pooled sandbox, restored per run
The process rows time subprocess.run(...) of `python3 -c "print(1+1)"`.
"""

import argparse
import datetime
import functools
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("HL_BUILD", ROOT / "build"))
sys.path.insert(0, str(BUILD / "python" / "lib"))

import hyperlight  # noqa: E402

FLOOR_ROW = re.compile(r"^floor: bare VM exit round trip\s+\d+\s+([\d.]+) (us|ms)", re.M)
BWRAP = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all"]


def floor_us():
    """The median of hyperlight-bench's exit-floor row (a short run: 2 rounds)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([str(BUILD / "bin" / "hyperlight-bench"), "--rounds", "2", "--no-insns", "--no-json",
                              "--out", tmp], check=True, capture_output=True, text=True).stdout
    m = FLOOR_ROW.search(out)
    if not m:
        raise SystemExit("hyperlight-bench printed no floor row")
    return float(m.group(1)) * (1000 if m.group(2) == "ms" else 1)


def timed(fn, n):
    clock, times = time.perf_counter_ns, []
    for _ in range(n):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return times


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="runs per round and row")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--procs", type=int, default=20, help="process runs per round")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    langs = [lang for lang in hyperlight.LANGUAGES if (BUILD / "guests" / f"{lang}.elf").is_file()]
    rows = {}  # name -> per-run ns
    funcs = []
    for lang in langs:
        sb = hyperlight.Sandbox(hyperlight.find_guest(lang))
        persistent = hyperlight.Interpreter(lang, persistent=True)
        assert sb.call("Eval", "1+1") == "2"
        assert persistent.run("1+1").value == 2 and hyperlight.run("1+1", lang).value == 2
        fresh = sb.snapshot()
        timed_sb = hyperlight.Sandbox(fresh, timeout=hyperlight.interpreter.DEFAULT_TIMEOUT)

        def eval_restore(sb=sb, fresh=fresh):
            sb.call("Eval", "1+1")
            sb.restore(fresh)

        funcs += [(f"{lang}: Eval on a warm sandbox", lambda sb=sb: sb.call("Eval", "1+1"), a.calls),
                  (f"{lang}: Eval + restore, no package code", eval_restore, a.calls),
                  (f"{lang}: the same, timeout 1 s", functools.partial(eval_restore, timed_sb), a.calls),
                  (f"{lang}: persistent run", lambda p=persistent: p.run("1+1"), a.calls),
                  (f"{lang}: hyperlight.run (pool)", lambda lang=lang: hyperlight.run("1+1", lang), a.calls)]
    cmd = [sys.executable, "-c", "print(1+1)"]
    funcs.append(("process: python3 -c", lambda: subprocess.run(cmd, check=True, capture_output=True), a.procs))
    if shutil.which("bwrap"):
        funcs.append(("process: bwrap + python3 -c",
                      lambda: subprocess.run(BWRAP + cmd, check=True, capture_output=True), a.procs))
    floors = [floor_us()]
    for name, fn, n in funcs:  # warm up
        timed(fn, min(n, 200))
    for _ in range(a.rounds):  # interleaved: every row sees the same machine load
        for name, fn, n in funcs:
            rows.setdefault(name, []).extend(timed(fn, n))
    floors.append(floor_us())
    floor = statistics.mean(floors) * 1e3
    kvm = "kvm_pvm" if os.path.exists("/sys/module/kvm_pvm") else "hardware KVM"
    lines = [
        f"# hyperlight.run(\"1+1\") vs the exit floor and processes: {a.rounds} rounds x {a.calls} runs "
        f"({a.procs} for processes), every run timed",
        f"# floor: hyperlight-bench 'bare VM exit round trip' median, before {floors[0]:.1f} us / after "
        f"{floors[1]:.1f} us (mean {floor / 1e3:.1f} us)",
        f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}, {platform.node()}, "
        f"Python {platform.python_version()}, /dev/kvm: {kvm}",
        "",
        f"{'path':<44}{'p10 us':>10}{'p50 us':>10}{'p90 us':>10}{'p50/floor':>11}",
        *(f"{name:<44}{pct(xs, .1) / 1e3:>10.1f}{pct(xs, .5) / 1e3:>10.1f}{pct(xs, .9) / 1e3:>10.1f}"
          f"{statistics.median(xs) / floor:>10.2f}x" for name, xs in rows.items()),
        "",
        "targets: persistent run (no restore) <= 1.3x the floor, hyperlight.run (restore per run) <= 1.4x",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"pyrun-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.txt"
    path.write_text(text)
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
