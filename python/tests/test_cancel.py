"""Interrupts from another thread, time limits, and Ctrl-C (a real SIGINT to a child process)."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import hyperlight
from conftest import CANCEL


def test_interrupt_from_thread():
    with hyperlight.Sandbox(CANCEL) as sb:
        t = threading.Timer(0.2, sb.interrupt)
        t.start()
        start = time.monotonic()
        with pytest.raises(hyperlight.Cancelled) as e:
            sb.call("Spin")
        assert type(e.value) is hyperlight.Cancelled and e.value.status == "HL_ERR_CANCELLED"
        assert "interrupted" in str(e.value)
        assert time.monotonic() - start < 10
        assert sb.state == "poisoned"


def test_interrupt_inside_host_function():
    with hyperlight.Sandbox(CANCEL, host_functions={
            "Slow": hyperlight.HostFunction(lambda: time.sleep(0.5) or 1, params=[], returns="i32")}) as sb:
        threading.Timer(0.1, sb.interrupt).start()
        with pytest.raises(hyperlight.Cancelled):
            sb.call("CallSlow")
        assert sb.state == "poisoned"


def test_timeout_and_restore():
    with hyperlight.Sandbox(CANCEL, timeout=0.2) as sb:
        snap = sb.snapshot()
        with pytest.raises(hyperlight.Timeout) as e:
            sb.call("Spin")
        assert isinstance(e.value, hyperlight.Cancelled) and isinstance(e.value, TimeoutError)
        assert str(e.value).endswith("timed out after 200 ms") and e.value.status == "HL_ERR_CANCELLED"
        assert sb.state == "poisoned"
        sb.restore(snap)
        assert sb.state == "ready"
        assert sb.call("Count") == 1
        sb.set_timeout(None)
        assert sb.call("SpinFor", 1000) == 1000
        sb.set_timeout(0.05)
        with pytest.raises(hyperlight.Timeout, match=r"timed out after 50 ms$"):
            sb.call("Spin")


def test_interrupt_when_idle_does_nothing():
    with hyperlight.Sandbox(CANCEL) as sb:
        sb.interrupt()
        assert sb.call("Count") == 1 and sb.state == "ready"


CHILD = r"""
import sys, time, hyperlight
mode = sys.argv[1]
def slow() -> hyperlight.i32:
    time.sleep(30)
    return 1
sb = hyperlight.Sandbox(sys.argv[2], host_functions={"Slow": slow})
print("ready", flush=True)
start = time.monotonic()
try:
    sb.call("Spin" if mode == "spin" else "CallSlow")
except KeyboardInterrupt:
    print("KeyboardInterrupt", sb.state, "%.1f" % (time.monotonic() - start) if time.monotonic() - start < 10 else "slow", flush=True)
"""


@pytest.mark.parametrize("mode", ["spin", "host"])
def test_ctrl_c(mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(CANCEL)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline() == "ready\n"
        time.sleep(0.5)  # the call is running
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert out.split()[:2] == ["KeyboardInterrupt", "poisoned"] and out.split()[2] != "slow", out


def test_sigint_handler_restored():
    # outside a call, SIGINT is Python's again: the handler is not left installed
    with hyperlight.Sandbox(CANCEL) as sb:
        sb.call("Count")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    hit = []
    old = signal.signal(signal.SIGINT, lambda *a: hit.append(1))
    try:
        with hyperlight.Sandbox(CANCEL) as sb:
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            with pytest.raises(hyperlight.Cancelled):  # the Python handler did not raise
                sb.call("Spin")
        assert hit == [1]
    finally:
        signal.signal(signal.SIGINT, old)
